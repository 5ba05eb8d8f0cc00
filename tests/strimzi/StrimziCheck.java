// Reads Strimzi custom resources (a JSON array on stdin) with Strimzi's own API model, the
// classes its operators read them with and its CRDs are generated from (io.strimzi:api), and
// prints for each one the problems found (a JSON array of arrays of strings):
// - a wrong type or enum value (Jackson fails; scalars are not coerced, as the API server
//   does not coerce them either);
// - a field the model does not declare (Strimzi keeps it aside and warns, its CRD refuses it);
// - an API group or version the model does not serve.
// Run by tests/strimzi_model.py; the jars come from Maven Central (pom.xml beside this file).

import com.fasterxml.jackson.databind.BeanDescription;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.introspect.BeanPropertyDefinition;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.type.LogicalType;
import io.strimzi.api.kafka.model.common.UnknownPropertyPreserving;
import io.strimzi.api.kafka.model.kafka.Kafka;
import io.strimzi.api.kafka.model.nodepool.KafkaNodePool;
import io.strimzi.api.kafka.model.topic.KafkaTopic;
import io.strimzi.api.kafka.model.user.KafkaUser;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

public final class StrimziCheck {
    private record Model(Class<?> type, String group, List<String> versions) {}

    private static final Map<String, Model> KINDS = Map.of(
            "Kafka", new Model(Kafka.class, Kafka.RESOURCE_GROUP, Kafka.VERSIONS),
            "KafkaNodePool",
            new Model(KafkaNodePool.class, KafkaNodePool.RESOURCE_GROUP, KafkaNodePool.VERSIONS),
            "KafkaTopic", new Model(KafkaTopic.class, KafkaTopic.RESOURCE_GROUP, KafkaTopic.VERSIONS),
            "KafkaUser", new Model(KafkaUser.class, KafkaUser.RESOURCE_GROUP, KafkaUser.VERSIONS));

    public static void main(String[] args) throws Exception {
        ObjectMapper mapper = JsonMapper.builder()
                .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
                .build();
        for (LogicalType type : List.of(LogicalType.Textual, LogicalType.Integer,
                LogicalType.Float, LogicalType.Boolean)) {
            for (CoercionInputShape shape : List.of(CoercionInputShape.String,
                    CoercionInputShape.Integer, CoercionInputShape.Float,
                    CoercionInputShape.Boolean)) {
                mapper.coercionConfigFor(type).setCoercion(shape, CoercionAction.Fail);
            }
        }
        // Integers are exact floats in the API server too (JSON numbers).
        mapper.coercionConfigFor(LogicalType.Float)
                .setCoercion(CoercionInputShape.Integer, CoercionAction.TryConvert);
        ArrayNode out = mapper.createArrayNode();
        for (JsonNode doc : mapper.readTree(System.in)) {
            ArrayNode problems = out.addArray();
            Model model = KINDS.get(doc.path("kind").asText());
            if (model == null) {
                problems.add("kind " + doc.path("kind").asText() + " is not a Strimzi kind");
                continue;
            }
            String[] apiVersion = doc.path("apiVersion").asText().split("/", 2);
            if (apiVersion.length != 2 || !apiVersion[0].equals(model.group())
                    || !model.versions().contains(apiVersion[1])) {
                problems.add("apiVersion " + doc.path("apiVersion").asText() + " is not served ("
                        + model.group() + "/" + model.versions() + ")");
            }
            try {
                List<String> found = new ArrayList<>();
                unknown(mapper, mapper.treeToValue(doc, model.type()), "", found);
                found.forEach(problems::add);
            } catch (JsonMappingException error) {
                problems.add(path(error) + ": " + error.getOriginalMessage());
            }
        }
        System.out.println(mapper.writeValueAsString(out));
    }

    /** Fields the model kept aside as unknown, anywhere below `value`. */
    private static void unknown(ObjectMapper mapper, Object value, String path, List<String> found) {
        if (value == null) {
            return;
        }
        if (value instanceof UnknownPropertyPreserving preserving
                && preserving.getAdditionalProperties() != null
                && !preserving.getAdditionalProperties().isEmpty()) {
            found.add((path.isEmpty() ? "(root)" : path) + ": unknown field(s) "
                    + new TreeSet<>(preserving.getAdditionalProperties().keySet()));
        }
        if (value instanceof Collection<?> items) {
            int index = 0;
            for (Object item : items) {
                unknown(mapper, item, path + "." + index++, found);
            }
            return;
        }
        if (value instanceof Map<?, ?> map) {
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                unknown(mapper, entry.getValue(), path + "." + entry.getKey(), found);
            }
            return;
        }
        if (!value.getClass().getName().startsWith("io.strimzi.")) {
            return;  // metadata (fabric8's ObjectMeta) and scalars
        }
        BeanDescription bean = mapper.getSerializationConfig()
                .introspect(mapper.constructType(value.getClass()));
        for (BeanPropertyDefinition property : bean.findProperties()) {
            if (!property.hasGetter() || property.getName().equals("status")) {
                continue;
            }
            Object child;
            try {
                child = property.getGetter().getValue(value);
            } catch (RuntimeException computedGetterFailed) {
                continue;
            }
            unknown(mapper, child, path.isEmpty() ? property.getName()
                    : path + "." + property.getName(), found);
        }
    }

    private static String path(JsonMappingException error) {
        StringBuilder path = new StringBuilder();
        for (JsonMappingException.Reference reference : error.getPath()) {
            if (path.length() > 0) {
                path.append('.');
            }
            path.append(reference.getFieldName() != null ? reference.getFieldName()
                    : String.valueOf(reference.getIndex()));
        }
        return path.length() == 0 ? "(root)" : path.toString();
    }
}
