//! quoteflow's L2 order book, compiled. `models.book` is its only user and documents it; this
//! crate holds the book's state and update loop, nothing else:
//!
//! - prices are kept as exact integer ticks of 10^-18 (every venue grid is a multiple of it),
//!   parsed from the decimal text of the events' `Decimal`s, so levels sort and compare as
//!   machine integers; a price finer than 10^-18 or beyond ±1.7e20 is refused, never rounded;
//! - each level keeps the event's own `(price, size)` tuple, so the book hands back the very
//!   `Decimal`s it was given: no `Decimal` is created on the way in or out (the edges);
//! - depth levels that come as `Levels` (`levels.rs`: parsed from the venue's JSON, no
//!   `Decimal` made) go in as numbers, and a level's `(price, size)` pair is made, once, only
//!   when it is read (the touch, `levels()`);
//! - the sequencing rule stays the Python object `models.sequencing` defines (one
//!   implementation of Binance's rules), called once per delta.
//!

mod levels;

use std::collections::{BTreeMap, VecDeque};

use levels::{Level, LevelTable, Levels, LevelsError, Num};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

/// The Python objects the book returns or compares with, handed over once by `models.book`.
struct Shared {
    delta_type: Py<PyType>,
    snapshot_type: Py<PyType>,
    applied: PyObject,
    buffered: PyObject,
    stale: PyObject,
    gap: PyObject,
    crossed: PyObject,
    verdict_apply: PyObject,
    verdict_stale: PyObject,
    default_rule: PyObject,
    zero: PyObject,
    two: PyObject,
    buffer_limit: usize,
}

static SHARED: GILOnceCell<Shared> = GILOnceCell::new();

fn shared(py: Python<'_>) -> PyResult<&Shared> {
    SHARED
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("quoteflow_book is used through models.book"))
}

/// Called once by `models.book` at import.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn configure(
    py: Python<'_>,
    delta_type: Py<PyType>,
    snapshot_type: Py<PyType>,
    statuses: (PyObject, PyObject, PyObject, PyObject, PyObject),
    verdict_apply: PyObject,
    verdict_stale: PyObject,
    default_rule: PyObject,
    zero: PyObject,
    two: PyObject,
    buffer_limit: usize,
) -> PyResult<()> {
    let (applied, buffered, stale, gap, crossed) = statuses;
    let value = Shared {
        delta_type,
        snapshot_type,
        applied,
        buffered,
        stale,
        gap,
        crossed,
        verdict_apply,
        verdict_stale,
        default_rule,
        zero,
        two,
        buffer_limit,
    };
    // A second import (importlib.reload) hands over equal objects: keep the first.
    let _ = SHARED.set(py, value);
    Ok(())
}

/// Exact ticks of 10^-18 from a number's decimal text (`str(Decimal)`: digits, an optional
/// point, an optional exponent).
fn parse_ticks(text: &str) -> Option<i128> {
    Num::parse(text.as_bytes())?.ticks()
}

fn ticks_of(price: &Bound<'_, PyAny>) -> PyResult<i128> {
    let text = price.str()?;
    parse_ticks(text.to_str()?).ok_or_else(|| {
        PyValueError::new_err(format!(
            "book price {text} is not a finite number on a 1e-18 grid within ±1.7e20"
        ))
    })
}

/// A level in the book: the event's own pair, or the numbers of a `Levels` level with the
/// pair made on its first read.
enum Entry {
    Pair(Py<PyTuple>),
    Parsed(Level, GILOnceCell<Py<PyTuple>>),
}

impl Entry {
    fn pair<'a>(&'a self, py: Python<'_>) -> PyResult<&'a Py<PyTuple>> {
        match self {
            Entry::Pair(pair) => Ok(pair),
            Entry::Parsed(level, pair) => {
                pair.get_or_try_init(py, || Ok(level.pair(py)?.unbind()))
            }
        }
    }
}

/// One side's levels by key, best last: `key` is the price's ticks for bids and their
/// negative for asks, so both sides iterate best-first in reverse. A B-tree, because Binance
/// diffs touch levels all through the ~5,000 of a side: a sorted vector's memmoves cost more
/// than the tree's pointer chasing (measured on the USD-M recording).
struct Side {
    levels: BTreeMap<i128, Entry>,
    sign: i128,                          // 1 for bids, -1 for asks
    // The prices (ticks) the last `apply` set or removed on this side, or every price
    // (a snapshot, a lost sync): what `changed_within` asks, for a few ns a diff.
    changed: Vec<i128>,
    all_changed: bool,
}

impl Side {
    fn new(sign: i128) -> Self {
        Self { levels: BTreeMap::new(), sign, changed: Vec::new(), all_changed: false }
    }

    fn mark(&mut self, ticks: i128) {
        self.changed.push(ticks);
    }

    fn forget_changes(&mut self, all: bool) {
        self.changed.clear();
        self.all_changed = all;
    }

    /// A level priced within [lo, hi] ticks changed in the last `apply`.
    fn changed_within(&self, lo: i128, hi: i128) -> bool {
        self.all_changed || self.changed.iter().any(|&ticks| lo <= ticks && ticks <= hi)
    }

    fn get(&self, ticks: i128) -> Option<&Entry> {
        self.levels.get(&(ticks * self.sign))
    }

    fn set(&mut self, level: &Bound<'_, PyAny>) -> PyResult<()> {
        let pair = match level.downcast_exact::<PyTuple>() {
            Ok(pair) if pair.len() == 2 => pair.clone(),
            _ => {
                let (price, size): (Bound<'_, PyAny>, Bound<'_, PyAny>) = level.extract()?;
                PyTuple::new(level.py(), [price, size])?
            }
        };
        let ticks = ticks_of(&pair.get_item(0)?)?;
        self.mark(ticks);
        let key = ticks * self.sign;
        // Sizes are absolute; zero removes, and removing an unknown level is normal.
        if pair.get_item(1)?.is_truthy()? {
            self.levels.insert(key, Entry::Pair(pair.unbind()));
        } else {
            self.levels.remove(&key);
        }
        Ok(())
    }

    fn update(&mut self, levels: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(parsed) = levels.downcast_exact::<Levels>() {
            for level in &parsed.get().levels {
                self.mark(level.ticks);
                let key = level.ticks * self.sign;
                if level.size.is_zero() {
                    self.levels.remove(&key);
                } else {
                    self.levels.insert(key, Entry::Parsed(*level, GILOnceCell::new()));
                }
            }
        } else if let Ok(list) = levels.downcast_exact::<PyList>() {
            for level in list.iter() {
                self.set(&level)?;
            }
        } else {
            for level in levels.try_iter()? {
                self.set(&level?)?;
            }
        }
        Ok(())
    }

    fn best(&self) -> Option<(&i128, &Entry)> {
        self.levels.last_key_value()
    }

    /// The entries, best first.
    fn entries(&self) -> std::iter::Rev<std::collections::btree_map::Values<'_, i128, Entry>> {
        self.levels.values().rev()
    }
}

/// Event counts. Every delta ends up counted once in applied, stale, gaps or crossed, or is
/// still pending; `buffered` counts deltas that waited for a snapshot on the way.
#[pyclass(module = "quoteflow_book")]
#[derive(Default, Clone)]
struct BookStats {
    #[pyo3(get, set)]
    applied: u64,
    #[pyo3(get, set)]
    buffered: u64,
    #[pyo3(get, set)]
    crossed: u64,
    #[pyo3(get, set)]
    gaps: u64,
    #[pyo3(get, set)]
    resyncs: u64,
    #[pyo3(get, set)]
    snapshots: u64,
    #[pyo3(get, set)]
    stale: u64,
}

#[pymethods]
impl BookStats {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("applied", self.applied)?;
        dict.set_item("buffered", self.buffered)?;
        dict.set_item("crossed", self.crossed)?;
        dict.set_item("gaps", self.gaps)?;
        dict.set_item("resyncs", self.resyncs)?;
        dict.set_item("snapshots", self.snapshots)?;
        dict.set_item("stale", self.stale)?;
        Ok(dict)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("BookStats({})", self.as_dict(py)?.repr()?))
    }

    fn __reduce__(&self, py: Python<'_>) -> PyResult<(Py<PyType>, (), Py<PyDict>)> {
        Ok((py.get_type::<Self>().unbind(), (), self.as_dict(py)?.unbind()))
    }

    fn __setstate__(&mut self, state: &Bound<'_, PyDict>) -> PyResult<()> {
        let get = |name: &str| -> PyResult<u64> {
            state.get_item(name)?.map_or(Ok(0), |value| value.extract())
        };
        self.applied = get("applied")?;
        self.buffered = get("buffered")?;
        self.crossed = get("crossed")?;
        self.gaps = get("gaps")?;
        self.resyncs = get("resyncs")?;
        self.snapshots = get("snapshots")?;
        self.stale = get("stale")?;
        Ok(())
    }
}

/// A bounded deque like Python's `deque(maxlen=...)`: a full one drops from the other end.
struct Pending {
    items: VecDeque<PyObject>,
    limit: usize,
}

impl Pending {
    fn push(&mut self, item: PyObject, front: bool) {
        if self.limit == 0 {
            return;
        }
        if self.items.len() == self.limit {
            if front {
                self.items.pop_back();
            } else {
                self.items.pop_front();
            }
        }
        if front {
            self.items.push_front(item);
        } else {
            self.items.push_back(item);
        }
    }
}

/// L2 book for one instrument; see `models.book` for the contract. Subclassable, as the
/// Python book was (a subclass gets a `__dict__` for its own attributes).
#[pyclass(module = "quoteflow_book", subclass)]
struct OrderBook {
    #[pyo3(get, set)]
    venue: PyObject,
    #[pyo3(get, set)]
    symbol: PyObject,
    #[pyo3(get)]
    stats: Py<BookStats>,
    rule: PyObject,
    bids: Side,
    asks: Side,
    pending: Pending,
    seq: Option<PyObject>,
    synced: bool,
    bridged: bool,    // a delta has been applied since the snapshot
    was_broken: bool, // sync was lost to a gap or a cross, not yet recovered
}

fn status(py: Python<'_>, pick: fn(&Shared) -> &PyObject) -> PyResult<PyObject> {
    Ok(pick(shared(py)?).clone_ref(py))
}

impl OrderBook {
    fn side(&self, side: &Bound<'_, PyAny>) -> PyResult<&Side> {
        if let Ok(name) = side.extract::<&str>() {
            match name {
                "bid" => return Ok(&self.bids),
                "ask" => return Ok(&self.asks),
                _ => {}
            }
        }
        Err(PyValueError::new_err(format!(
            "book side must be 'bid' or 'ask', not {}",
            side.repr()?
        )))
    }

    fn seq_object(&self, py: Python<'_>) -> PyObject {
        self.seq.as_ref().map_or_else(|| py.None(), |seq| seq.clone_ref(py))
    }

    fn is_crossed(&self) -> bool {
        match (self.bids.best(), self.asks.best()) {
            (Some((bid, _)), Some((ask, _))) => *bid >= -*ask,
            _ => false,
        }
    }

    fn clear(&mut self) {
        self.bids.levels.clear();
        self.asks.levels.clear();
        self.bids.forget_changes(true);
        self.asks.forget_changes(true);
    }

    fn lose_sync(&mut self, py: Python<'_>, gap: bool) -> PyResult<PyObject> {
        {
            let mut stats = self.stats.borrow_mut(py);
            if gap {
                stats.gaps += 1;
            } else {
                stats.crossed += 1;
            }
        }
        self.clear();
        self.seq = None;
        self.synced = false;
        self.bridged = false;
        self.was_broken = true;
        status(py, if gap { |s| &s.gap } else { |s| &s.crossed })
    }

    fn apply_delta(&mut self, delta: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let py = delta.py();
        let shared = shared(py)?;
        let verdict = self.rule.bind(py).call_method1(
            intern!(py, "check"),
            (delta, self.seq_object(py), self.bridged),
        )?;
        if !verdict.is(&shared.verdict_apply) {
            if verdict.is(&shared.verdict_stale) {
                self.stats.borrow_mut(py).stale += 1;
                return status(py, |s| &s.stale);
            }
            // The gapping delta may still bridge onto the next snapshot: keep it first in line.
            self.pending.push(delta.clone().unbind(), true);
            return self.lose_sync(py, true);
        }
        self.bids.update(&delta.getattr(intern!(py, "bids"))?)?;
        self.asks.update(&delta.getattr(intern!(py, "asks"))?)?;
        self.seq = Some(delta.getattr(intern!(py, "seq"))?.unbind());
        self.bridged = true;
        if self.is_crossed() {
            return self.lose_sync(py, false);
        }
        self.stats.borrow_mut(py).applied += 1;
        status(py, |s| &s.applied)
    }

    fn apply_snapshot(&mut self, snapshot: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let py = snapshot.py();
        let snapshot_seq = snapshot.getattr(intern!(py, "seq"))?;
        // A snapshot older than the synced book would roll it back, and the next live delta
        // would then look like a gap: keep the newer book.
        if self.synced && !snapshot_seq.is_none() {
            let book_seq = match &self.seq {
                Some(seq) if !seq.is_none(py) => seq.bind(py).clone(),
                _ => 0i64.into_pyobject(py)?.into_any(),
            };
            if snapshot_seq.le(&book_seq)? {
                self.stats.borrow_mut(py).stale += 1;
                return status(py, |s| &s.stale);
            }
        }
        self.clear();
        self.bids.update(&snapshot.getattr(intern!(py, "bids"))?)?;
        self.asks.update(&snapshot.getattr(intern!(py, "asks"))?)?;
        self.seq = Some(snapshot_seq.unbind());
        self.bridged = false;
        if self.is_crossed() {
            return self.lose_sync(py, false);
        }
        self.synced = true;
        {
            let mut stats = self.stats.borrow_mut(py);
            stats.snapshots += 1;
            if self.was_broken {
                stats.resyncs += 1;
            }
        }
        self.was_broken = false;
        // The deltas buffered before the snapshot, with the same rule as live ones.
        while let Some(delta) = self.pending.items.pop_front() {
            let outcome = self.apply_delta(delta.bind(py))?;
            if outcome.is(&shared(py)?.gap) || outcome.is(&shared(py)?.crossed) {
                return Ok(outcome);
            }
        }
        status(py, |s| &s.applied)
    }
}

fn side_pairs(py: Python<'_>, side: &Side) -> PyResult<Vec<Py<PyTuple>>> {
    side.entries().map(|entry| Ok(entry.pair(py)?.clone_ref(py))).collect()
}

#[pymethods]
impl OrderBook {
    #[new]
    #[pyo3(signature = (venue, symbol, rules=None, *, buffer_limit=None))]
    fn new(
        py: Python<'_>,
        venue: PyObject,
        symbol: PyObject,
        rules: Option<PyObject>,
        buffer_limit: Option<usize>,
    ) -> PyResult<Self> {
        let buffer_limit = buffer_limit.unwrap_or(shared(py)?.buffer_limit);
        let rule = match rules {
            Some(rule) if !rule.is_none(py) => rule,
            _ => shared(py)?.default_rule.clone_ref(py),
        };
        Ok(Self {
            venue,
            symbol,
            stats: Py::new(py, BookStats::default())?,
            rule,
            bids: Side::new(1),
            asks: Side::new(-1),
            pending: Pending { items: VecDeque::new(), limit: buffer_limit },
            seq: None,
            synced: false,
            bridged: false,
            was_broken: false,
        })
    }

    #[getter]
    fn synced(&self) -> bool {
        self.synced
    }

    /// The synced book's update id: the snapshot's, then each applied delta's last id.
    #[getter]
    fn seq(&self, py: Python<'_>) -> PyObject {
        self.seq_object(py)
    }

    /// Deltas buffered while waiting for a snapshot.
    #[getter]
    fn pending(&self) -> usize {
        self.pending.items.len()
    }

    fn apply(&mut self, event: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let py = event.py();
        let shared = shared(py)?;
        let kind = event.get_type();
        self.bids.forget_changes(false);
        self.asks.forget_changes(false);
        if kind.is(&shared.delta_type) {
            if !self.synced {
                self.pending.push(event.clone().unbind(), false);
                self.stats.borrow_mut(py).buffered += 1;
                return status(py, |s| &s.buffered);
            }
            return self.apply_delta(event);
        }
        if kind.is(&shared.snapshot_type) {
            return self.apply_snapshot(event);
        }
        Err(PyTypeError::new_err(format!(
            "OrderBook.apply takes BookSnapshot or BookDelta, not {}",
            kind.repr()?
        )))
    }

    // -- BookView ------------------------------------------------------------------------

    fn best_bid(&self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        self.bids.best().map(|(_, entry)| Ok(entry.pair(py)?.clone_ref(py))).transpose()
    }

    fn best_ask(&self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        self.asks.best().map(|(_, entry)| Ok(entry.pair(py)?.clone_ref(py))).transpose()
    }

    fn mid<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match (self.bids.best(), self.asks.best()) {
            (Some((_, bid)), Some((_, ask))) => {
                let (bid, ask) = (bid.pair(py)?.bind(py), ask.pair(py)?.bind(py));
                let sum = bid.get_item(0)?.add(ask.get_item(0)?)?;
                Ok(Some(sum.div(shared(py)?.two.bind(py))?))
            }
            _ => Ok(None),
        }
    }

    fn size_at(&self, side: &Bound<'_, PyAny>, price: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let py = price.py();
        let book = self.side(side)?;
        match book.get(ticks_of(price)?) {
            Some(entry) => Ok(entry.pair(py)?.bind(py).get_item(1)?.unbind()),
            None => Ok(shared(py)?.zero.clone_ref(py)),
        }
    }

    /// Whether the last `apply` set or removed a level of `side` priced within [lo, hi]
    /// (ticks of 10^-18, as `ticks` gives them). A snapshot or a lost sync changes every
    /// level.
    fn changed_within(&self, side: &Bound<'_, PyAny>, lo: i128, hi: i128) -> PyResult<bool> {
        Ok(self.side(side)?.changed_within(lo, hi))
    }

    /// The best `depth` levels of a side, best first.
    fn levels<'py>(
        &self,
        py: Python<'py>,
        side: &Bound<'py, PyAny>,
        depth: isize,
    ) -> PyResult<Bound<'py, PyList>> {
        let entries = self.side(side)?.entries().take(depth.max(0) as usize);
        let pairs: PyResult<Vec<_>> = entries.map(|entry| Ok(entry.pair(py)?.bind(py))).collect();
        PyList::new(py, pairs?)
    }

    // -- pickling (Bytewax snapshots the quote session that holds the book) ---------------

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyType>, Bound<'py, PyTuple>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let book = slf.borrow();
        let args = PyTuple::new(
            py,
            [book.venue.clone_ref(py), book.symbol.clone_ref(py), book.rule.clone_ref(py)],
        )?;
        let state = (
            book.pending.limit,
            side_pairs(py, &book.bids)?,
            side_pairs(py, &book.asks)?,
            book.pending.items.iter().map(|d| d.clone_ref(py)).collect::<Vec<_>>(),
            book.seq_object(py),
            (book.synced, book.bridged, book.was_broken),
            book.stats.borrow(py).as_dict(py)?,
        )
            .into_pyobject(py)?;
        Ok((slf.get_type(), args, state))
    }

    #[allow(clippy::type_complexity)]
    fn __setstate__(
        &mut self,
        py: Python<'_>,
        state: (
            usize,
            Bound<'_, PyList>,
            Bound<'_, PyList>,
            Vec<PyObject>,
            PyObject,
            (bool, bool, bool),
            Bound<'_, PyDict>,
        ),
    ) -> PyResult<()> {
        let (limit, bids, asks, pending, seq, flags, stats) = state;
        self.clear();
        self.bids.update(bids.as_any())?;
        self.asks.update(asks.as_any())?;
        self.pending = Pending { items: pending.into_iter().collect(), limit };
        self.seq = if seq.is_none(py) { None } else { Some(seq) };
        (self.synced, self.bridged, self.was_broken) = flags;
        self.stats.borrow_mut(py).__setstate__(&stats)
    }
}

/// A price's exact ticks of 10^-18, as the book keeps it (`OrderBook.changed_within`).
#[pyfunction]
fn ticks(price: &Bound<'_, PyAny>) -> PyResult<i128> {
    ticks_of(price)
}

#[pymodule]
fn quoteflow_book(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(configure, module)?)?;
    module.add_function(wrap_pyfunction!(ticks, module)?)?;
    module.add_class::<OrderBook>()?;
    module.add_class::<BookStats>()?;
    module.add_class::<Levels>()?;
    module.add_class::<LevelTable>()?;
    module.add("LevelsError", module.py().get_type::<LevelsError>())?;
    // The bound `Levels` holds its numbers to, for the test that it is event_bounds' own.
    module.add("MAX_DECIMAL_EXPONENT", levels::MAX_DECIMAL_EXPONENT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_ticks, Side};

    const TICK: i128 = 1_000_000_000_000_000_000;

    #[test]
    fn decimal_texts_become_exact_ticks() {
        assert_eq!(parse_ticks("61234.50"), Some(6_123_450 * TICK / 100));
        assert_eq!(parse_ticks("98.5"), parse_ticks("98.50"));
        assert_eq!(parse_ticks("-0.25"), Some(-TICK / 4));
        assert_eq!(parse_ticks("1E+2"), Some(100 * TICK));
        assert_eq!(parse_ticks("1.5E-7"), Some(150_000_000_000));
        assert_eq!(parse_ticks("0E-25"), Some(0));
        assert_eq!(parse_ticks("1.0000000000000000000000"), Some(TICK));
    }

    #[test]
    fn finer_than_a_tick_or_not_a_number_is_refused() {
        assert_eq!(parse_ticks("1E-19"), None);
        assert_eq!(parse_ticks("NaN"), None);
        assert_eq!(parse_ticks("Infinity"), None);
        assert_eq!(parse_ticks(""), None);
        assert_eq!(parse_ticks("1e999"), None);
        assert_eq!(parse_ticks("1.2.3"), None);
    }

    #[test]
    fn changed_within_finds_the_changed_prices_and_nothing_else() {
        let mut side = Side::new(-1);
        assert!(!side.changed_within(i128::MIN, i128::MAX)); // nothing applied yet
        side.mark(300 * TICK);
        side.mark(100 * TICK);
        for (lo, hi) in [(100, 100), (300, 300), (0, 100), (300, 400), (0, 400)] {
            assert!(side.changed_within(lo * TICK, hi * TICK), "[{lo}, {hi}]");
        }
        // Between two changed prices, or beside them, nothing changed.
        assert!(!side.changed_within(150 * TICK, 200 * TICK));
        assert!(!side.changed_within(0, 100 * TICK - 1));
        assert!(!side.changed_within(300 * TICK + 1, 400 * TICK));
        side.forget_changes(false); // the next apply
        assert!(!side.changed_within(100 * TICK, 100 * TICK));
        side.forget_changes(true); // a snapshot or a lost sync
        assert!(side.changed_within(-TICK, -TICK) && side.changed_within(i128::MAX, i128::MAX));
    }
}
