//! Depth levels that stay exact numbers from the venue's JSON to the book (issue 10).
//!
//! `Levels(json)` parses a JSON array of `[price, size]` pairs (`[["61234.50","0.010"],...]`,
//! the numbers quoted, as Binance sends them) into `Num`s: sign, coefficient and
//! exponent, exactly what Python's `Decimal` of the same text holds. The book reads the
//! prices' ticks from them without a Python object; `Decimal`s are made only when someone
//! reads the levels as the sequence of `(Decimal, Decimal)` pairs they replace, and then
//! from the number's `str(Decimal)` text, so they equal msgspec's to the exponent.

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};

create_exception!(
    quoteflow_book,
    LevelsError,
    PyValueError,
    "Depth levels that are not a JSON array of [price, size] decimal numbers."
);

const SCALE_DIGITS: i32 = 18;

/// The largest adjusted exponent (`Decimal.adjusted()`: the coefficient's digits - 1 + the
/// exponent) of a nonzero price or size `Levels` holds, so 1e31 and beyond are refused. It is
/// `models.event_bounds.MAX_DECIMAL_EXPONENT`, the bound every decoded event is held to; the
/// crate exposes it as `quoteflow_book.MAX_DECIMAL_EXPONENT` and tests/test_book_levels.py
/// holds the two equal. A constant, not a value handed over from Python: `Levels(bytes)` is
/// made by the decoders, by pickle and by `LevelTable`, before or without `models.book`'s
/// `configure`, and must refuse the same numbers whoever makes it.
pub(crate) const MAX_DECIMAL_EXPONENT: i64 = 30;

/// A decimal number as `Decimal` holds it: `(-1)^negative * coefficient * 10^exponent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Num {
    coefficient: i128, // never negative
    exponent: i32,
    negative: bool,
}

impl Num {
    /// The number a decimal text (`str(Decimal)`, Binance's strings: digits, an optional
    /// point, an optional exponent) is, or None for anything else (NaN, Infinity, blanks,
    /// more than 38 significant digits, an exponent beyond i32). Linear in the text: digits past
    /// the 38th fail the checked arithmetic at once, and leading zeros only count.
    pub(crate) fn parse(text: &[u8]) -> Option<Num> {
        let (negative, mut i) = match text.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let mut coefficient: i128 = 0;
        let mut exponent: i32 = 0;
        let mut seen_digit = false;
        let mut seen_point = false;
        while i < text.len() {
            match text[i] {
                c @ b'0'..=b'9' => {
                    coefficient =
                        coefficient.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
                    seen_digit = true;
                    if seen_point {
                        exponent = exponent.checked_sub(1)?;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                b'e' | b'E' => {
                    let explicit: i32 = std::str::from_utf8(&text[i + 1..]).ok()?.parse().ok()?;
                    exponent = exponent.checked_add(explicit)?;
                    break;
                }
                _ => return None,
            }
            i += 1;
        }
        if !seen_digit {
            return None;
        }
        Some(Num { coefficient, exponent, negative })
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    /// Within `MAX_DECIMAL_EXPONENT`, as `models.event_bounds.decimal_problem` has it: a zero
    /// whatever its exponent (`"0E+99"`), else an adjusted exponent of at most the bound.
    pub(crate) fn in_bounds(&self) -> bool {
        self.is_zero()
            || i64::from(self.coefficient.ilog10()) + i64::from(self.exponent)
                <= MAX_DECIMAL_EXPONENT
    }

    /// Exact ticks of 10^-18, or None when the number is finer than a tick or beyond ±1.7e20.
    pub(crate) fn ticks(&self) -> Option<i128> {
        let shift = self.exponent.checked_add(SCALE_DIGITS)?;
        let ticks = if self.coefficient == 0 {
            0
        } else if shift >= 0 {
            self.coefficient.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?
        } else {
            // Finer than a tick: exact only when the extra digits are zeros ("1.0000…").
            let divisor = 10i128.checked_pow(shift.unsigned_abs())?;
            if self.coefficient % divisor != 0 {
                return None;
            }
            self.coefficient / divisor
        };
        Some(if self.negative { -ticks } else { ticks })
    }

    /// `str(Decimal)` of this number: Python's to-scientific-string rule.
    pub(crate) fn decimal_text(&self) -> String {
        let digits = self.coefficient.to_string();
        let count = digits.len() as i64;
        let exponent = i64::from(self.exponent);
        let left_digits = exponent + count;
        let dot_place = if exponent <= 0 && left_digits > -6 { left_digits } else { 1 };
        let mut text = String::with_capacity(digits.len() + 12);
        if self.negative {
            text.push('-');
        }
        if dot_place <= 0 {
            text.push_str("0.");
            text.extend(std::iter::repeat_n('0', (-dot_place) as usize));
            text.push_str(&digits);
        } else if dot_place >= count {
            text.push_str(&digits);
            text.extend(std::iter::repeat_n('0', (dot_place - count) as usize));
        } else {
            text.push_str(&digits[..dot_place as usize]);
            text.push('.');
            text.push_str(&digits[dot_place as usize..]);
        }
        if left_digits != dot_place {
            text.push_str(&format!("E{:+}", left_digits - dot_place));
        }
        text
    }
}

/// One level as parsed: the price's ticks (what the book sorts by) and both numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub(crate) ticks: i128,
    pub(crate) price: Num,
    pub(crate) size: Num,
}

static DECIMAL: GILOnceCell<Py<PyType>> = GILOnceCell::new();

fn decimal<'py>(py: Python<'py>, number: &Num) -> PyResult<Bound<'py, PyAny>> {
    let kind = DECIMAL.import(py, "decimal", "Decimal")?;
    kind.call1((PyString::new(py, &number.decimal_text()),))
}

impl Level {
    /// `(Decimal(price), Decimal(size))`, equal to msgspec's to the exponent.
    pub(crate) fn pair<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [decimal(py, &self.price)?, decimal(py, &self.size)?])
    }
}

/// A strict reader of `[[price, size], ...]`: JSON whitespace, numbers quoted, without escapes
/// (not bare JSON numbers either, which msgspec reads by other rules: `-0` as `0`); anything
/// else is a `LevelsError` naming the byte where it went wrong.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> PyErr {
        let from = self.at.min(self.bytes.len());
        let near: String =
            String::from_utf8_lossy(&self.bytes[from..(from + 96).min(self.bytes.len())])
                .chars()
                .take(24)
                .collect();
        LevelsError::new_err(format!("depth levels: {what} at byte {} ({near:?})", self.at))
    }

    fn skip_blanks(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// After blanks, the next byte if it is one of `wanted` (consumed).
    fn take(&mut self, wanted: &[u8]) -> Option<u8> {
        self.skip_blanks();
        let byte = *self.bytes.get(self.at)?;
        if wanted.contains(&byte) {
            self.at += 1;
            Some(byte)
        } else {
            None
        }
    }

    fn expect(&mut self, wanted: u8, what: &str) -> PyResult<()> {
        self.take(&[wanted]).map(|_| ()).ok_or_else(|| self.error(what))
    }

    fn number(&mut self) -> PyResult<Num> {
        self.skip_blanks();
        let start = self.at;
        let end = (self.bytes.get(start) == Some(&b'"'))
            .then(|| self.bytes[start + 1..].iter().position(|&b| b == b'"' || b == b'\\'))
            .flatten()
            .map(|n| start + 1 + n)
            .filter(|&end| self.bytes[end] == b'"')
            .ok_or_else(|| self.error("expected a decimal number in quotes"))?;
        self.at = end + 1;
        let text = &self.bytes[start + 1..end];
        let number = Num::parse(text).ok_or_else(|| {
            self.at = start;
            self.error("expected a decimal number in quotes")
        })?;
        if !number.in_bounds() {
            self.at = start;
            let shown = String::from_utf8_lossy(&text[..text.len().min(40)]);
            let cut = if text.len() > 40 { "..." } else { "" };
            return Err(self.error(&format!(
                "{shown}{cut} is out of range (at most 1e{})",
                MAX_DECIMAL_EXPONENT + 1
            )));
        }
        Ok(number)
    }

    fn level(&mut self) -> PyResult<Level> {
        self.expect(b'[', "expected a [price, size] pair")?;
        let start = self.at;
        let price = self.number()?;
        self.expect(b',', "expected ',' after the price")?;
        let size = self.number()?;
        self.expect(b']', "expected ']' after the size")?;
        let ticks = price.ticks().ok_or_else(|| {
            self.at = start;
            self.error("a price finer than 1e-18 or beyond ±1.7e20")
        })?;
        Ok(Level { ticks, price, size })
    }

    fn levels(mut self) -> PyResult<Vec<Level>> {
        self.expect(b'[', "expected an array of levels")?;
        let mut levels = Vec::with_capacity(self.bytes.len() / 24);
        if self.take(b"]").is_none() {
            loop {
                levels.push(self.level()?);
                match self.take(b",]") {
                    Some(b',') => continue,
                    Some(_) => break,
                    None => return Err(self.error("expected ',' or ']' after a level")),
                }
            }
        }
        self.skip_blanks();
        if self.at != self.bytes.len() {
            return Err(self.error("unexpected text after the levels"));
        }
        Ok(levels)
    }
}

pub(crate) fn parse_levels(bytes: &[u8]) -> PyResult<Vec<Level>> {
    Reader { bytes, at: 0 }.levels()
}

/// The levels of one side of a depth event, parsed from the venue's JSON; behaves as the
/// list of `(Decimal, Decimal)` pairs it stands for (`models.events` documents the contract).
#[pyclass(module = "quoteflow_book", frozen, sequence)]
pub(crate) struct Levels {
    pub(crate) levels: Vec<Level>,
    pairs: GILOnceCell<Py<PyList>>, // the (Decimal, Decimal) list, made on the first read
}

impl Levels {
    fn pairs<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyList>> {
        let list = self.pairs.get_or_try_init(py, || -> PyResult<Py<PyList>> {
            let pairs =
                self.levels.iter().map(|level| level.pair(py)).collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, pairs)?.unbind())
        })?;
        Ok(list.bind(py))
    }

    /// `[["61234.50","0.010"],...]` with each number as `str(Decimal)`: what msgspec writes
    /// for the pairs with `decimal_format="string"`, byte for byte.
    fn json_text(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.levels.len() * 24 + 2);
        out.push(b'[');
        for (i, level) in self.levels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"[\"");
            out.extend_from_slice(level.price.decimal_text().as_bytes());
            out.extend_from_slice(b"\",\"");
            out.extend_from_slice(level.size.decimal_text().as_bytes());
            out.extend_from_slice(b"\"]");
        }
        out.push(b']');
        out
    }
}

#[pymethods]
impl Levels {
    /// From the JSON array's bytes (`bytes`, or any buffer such as a `msgspec.Raw`).
    #[new]
    fn new(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let levels = if let Ok(bytes) = data.downcast::<PyBytes>() {
            parse_levels(bytes.as_bytes())?
        } else {
            let buffer = PyBuffer::<u8>::get(data)?;
            if !buffer.is_c_contiguous() {
                return Err(LevelsError::new_err("depth levels: a contiguous buffer is needed"));
            }
            // SAFETY: the buffer is held (and the GIL with it) while the slice lives, and
            // parsing runs no Python code that could change it.
            let bytes = unsafe {
                std::slice::from_raw_parts(buffer.buf_ptr() as *const u8, buffer.len_bytes())
            };
            parse_levels(bytes)?
        };
        Ok(Self { levels, pairs: GILOnceCell::new() })
    }

    fn __len__(&self) -> usize {
        self.levels.len()
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.pairs(py)?.as_any().get_item(index)
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.pairs(py)?.as_any().try_iter()?.into_any())
    }

    fn __richcmp__<'py>(
        &self,
        py: Python<'py>,
        other: &Bound<'py, PyAny>,
        op: CompareOp,
    ) -> PyResult<Bound<'py, PyAny>> {
        let other = match other.downcast::<Levels>() {
            Ok(levels) => levels.get().pairs(py)?.clone().into_any(),
            Err(_) => other.clone(),
        };
        self.pairs(py)?.as_any().rich_compare(other, op)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.pairs(py)?.repr()?.to_string())
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        Ok((slf.get_type(), (PyBytes::new(py, &slf.get().json_text()),)))
    }

    /// The levels as msgspec's JSON encoder writes the pairs (for its `enc_hook`).
    fn json<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.json_text())
    }

    /// `[(str(price), str(size)), ...]`: the pairs' texts without making `Decimal`s.
    fn texts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let texts = self.levels.iter().map(|level| {
            (level.price.decimal_text(), level.size.decimal_text())
        });
        PyList::new(py, texts)
    }
}

/// The event cache's depth levels (`connectors.replay.event_cache`): every distinct number
/// text once, and each level's price and size as codes into them, so a cached event's sides
/// come back as `Levels` without parsing a level twice or making a `Decimal`.
#[pyclass(module = "quoteflow_book", frozen)]
pub(crate) struct LevelTable {
    numbers: Vec<Option<Num>>, // None: not a number `Levels` takes (or out of range)
    prices: Vec<u32>,
    sizes: Vec<u32>,
}

impl LevelTable {
    fn level(&self, i: usize) -> PyResult<Option<Level>> {
        let number = |code: u32| {
            self.numbers.get(code as usize).copied().ok_or_else(|| {
                pyo3::exceptions::PyIndexError::new_err(format!("no number with code {code}"))
            })
        };
        let (Some(price), Some(size)) = (number(self.prices[i])?, number(self.sizes[i])?) else {
            return Ok(None);
        };
        Ok(price.ticks().map(|ticks| Level { ticks, price, size }))
    }
}

#[pymethods]
impl LevelTable {
    /// `texts`: the numbers' `str(Decimal)`; `prices`, `sizes`: one code per level (int32
    /// buffers, such as numpy arrays).
    #[new]
    fn new(
        py: Python<'_>,
        texts: Vec<String>,
        prices: PyBuffer<i32>,
        sizes: PyBuffer<i32>,
    ) -> PyResult<Self> {
        let codes = |buffer: PyBuffer<i32>| -> PyResult<Vec<u32>> {
            buffer.to_vec(py)?.into_iter().map(|code| {
                u32::try_from(code).map_err(|_| PyValueError::new_err("a negative level code"))
            }).collect()
        };
        let (prices, sizes) = (codes(prices)?, codes(sizes)?);
        if prices.len() != sizes.len() {
            return Err(PyValueError::new_err("level prices and sizes differ in length"));
        }
        let numbers = texts
            .iter()
            .map(|text| Num::parse(text.as_bytes()).filter(Num::in_bounds))
            .collect();
        Ok(Self { numbers, prices, sizes })
    }

    /// Levels `start..end` as `Levels`, or None when one of them is not a number `Levels`
    /// takes (a price off the 10^-18 grid, a number of 1e31 or more): the caller keeps its
    /// `Decimal` pairs then.
    fn levels(&self, start: usize, end: usize) -> PyResult<Option<Levels>> {
        if start > end || end > self.prices.len() {
            return Err(pyo3::exceptions::PyIndexError::new_err("level range out of the table"));
        }
        let mut levels = Vec::with_capacity(end - start);
        for i in start..end {
            match self.level(i)? {
                Some(level) => levels.push(level),
                None => return Ok(None),
            }
        }
        Ok(Some(Levels { levels, pairs: GILOnceCell::new() }))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_levels, Num};

    fn text(number: &str) -> String {
        Num::parse(number.as_bytes()).unwrap().decimal_text()
    }

    #[test]
    fn decimal_text_is_pythons_str_of_decimal() {
        // Each pair: the input text, then str(Decimal(text)) as CPython prints it.
        for (input, python) in [
            ("61234.50", "61234.50"),
            ("0.010", "0.010"),
            ("0.00000000", "0E-8"),
            ("0.00000010", "1.0E-7"),
            ("0.00000100", "0.00000100"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("007.50", "7.50"),
            ("-0.0", "-0.0"),
            ("1E+2", "1E+2"),
            ("1e2", "1E+2"),
            ("100", "100"),
            ("1.5e-3", "0.0015"),
            (".5", "0.5"),
            ("5.", "5"),
            ("0", "0"),
            ("12345678901234567890.123", "12345678901234567890.123"),
        ] {
            assert_eq!(text(input), python, "{input}");
        }
    }

    #[test]
    fn levels_parse_quoted_numbers() {
        let levels = parse_levels(b" [ [\"61234.50\", \"0.010\"],[\"1.5\",\"0\"] ] ").unwrap();
        assert_eq!(levels.len(), 2);
        assert_eq!(levels[0].ticks, 6_123_450 * 10_000_000_000_000_000);
        assert_eq!(levels[0].size.decimal_text(), "0.010");
        assert!(levels[1].size.is_zero());
        assert!(parse_levels(b"[]").unwrap().is_empty());
    }

    fn in_bounds(number: &str) -> Option<bool> {
        Num::parse(number.as_bytes()).map(|n| n.in_bounds())
    }

    #[test]
    fn magnitudes_past_the_bound_are_out_of_range_zeros_never() {
        // The adjusted exponent, as Decimal.adjusted(): digits - 1 + exponent.
        for (number, inside) in [
            ("1e30", true),
            ("9.999e30", true),
            ("1e31", false),
            ("-1e31", false),
            ("1e40", false),
            ("1E+2147483647", false),
            ("0.1e32", false),
            ("0.1e31", true),
            ("0.10e31", true),
            ("10e30", false),
            ("0e99", true),
            ("-0E+2147483647", true),
            ("1e-2147483648", true), // tiny: decimal_problem takes it too
            ("0000000000000000000000000000000000000000000001e30", true), // leading zeros
        ] {
            assert_eq!(in_bounds(number), Some(inside), "{number}");
        }
        let digits = |count| "9".repeat(count);
        assert_eq!(in_bounds(&digits(31)), Some(true)); // 9.99e30
        assert_eq!(in_bounds(&digits(32)), Some(false)); // 9.99e31
    }

    #[test]
    fn huge_exponents_and_digit_runs_are_refused_without_overflow() {
        for text in [
            "1e999999999999".to_string(),
            "1e-999999999999".to_string(),
            "1.5e-2147483648".to_string(), // -1 - 2^31: past i32
            format!("1e{}", "9".repeat(10_000)),
            "1".repeat(10_000),           // past 38 significant digits
            format!("0.{}", "1".repeat(10_000)),
        ] {
            assert_eq!(Num::parse(text.as_bytes()), None, "{}", &text[..20]);
        }
        // Ten thousand leading zeros add no digit: parsed, in linear time.
        let zeros = format!("{}1", "0".repeat(10_000));
        assert_eq!(text(&zeros), "1");
        assert_eq!(text(&format!("0.{zeros}")), "1E-10001");
    }

    #[test]
    fn levels_out_of_range_are_refused() {
        assert!(parse_levels(b"[[\"1e20\",\"9e30\"],[\"0\",\"0E+99\"]]").is_ok());
        for bad in [
            &b"[[\"1\",\"1e40\"]]"[..],
            b"[[\"1\",\"-1e31\"]]",
            b"[[\"1e31\",\"1\"]]",
            b"[[\"1\",\"99999999999999999999999999999999\"]]",
            b"[[\"1\",\"1E+2147483647\"]]",
        ] {
            assert!(parse_levels(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn malformed_levels_are_refused() {
        for bad in [
            &b""[..],
            b"[",
            b"[[\"1\"]]",
            b"[[\"1\",\"2\",\"3\"]]",
            b"[[\"NaN\",\"1\"]]",
            b"[[\"1\",\"x\"]]",
            b"[[\"1\\u0030\",\"1\"]]",
            b"[[\"1E-19\",\"1\"]]",
            b"[[\"1\",\"1\"]] x",
            b"[[\"1\",\"1\"],]",
            b"[[1.5,\"1\"]]",
            b"{\"1\":\"1\"}",
        ] {
            assert!(parse_levels(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
