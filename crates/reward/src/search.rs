//! Fast searches: for the fixed tags (SIMD via `memchr::memmem`,
//! searchers built once) and for the end of a JSON string's plain run.

use crate::parse::{ASSISTANT_MARKER, THINK_CLOSE, THINK_OPEN, TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// A tag with a prebuilt searcher.
pub(crate) struct Tag {
    text: &'static str,
    finder: LazyLock<Finder<'static>>,
}

impl Tag {
    const fn new(text: &'static str, make: fn() -> Finder<'static>) -> Self {
        Tag {
            text,
            finder: LazyLock::new(make),
        }
    }

    /// Position of the first occurrence at or after `from`.
    pub(crate) fn find(&self, hay: &str, from: usize) -> Option<usize> {
        self.finder.find(&hay.as_bytes()[from..]).map(|i| from + i)
    }

    /// The tag's text.
    pub(crate) fn text(&self) -> &'static str {
        self.text
    }

    /// The tag's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }
}

pub(crate) static THINK_OPEN_TAG: Tag = Tag::new(THINK_OPEN, || Finder::new(THINK_OPEN));
pub(crate) static THINK_CLOSE_TAG: Tag = Tag::new(THINK_CLOSE, || Finder::new(THINK_CLOSE));
pub(crate) static TOOL_CALL_OPEN_TAG: Tag =
    Tag::new(TOOL_CALL_OPEN, || Finder::new(TOOL_CALL_OPEN));
pub(crate) static TOOL_CALL_CLOSE_TAG: Tag =
    Tag::new(TOOL_CALL_CLOSE, || Finder::new(TOOL_CALL_CLOSE));

static MARKER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(ASSISTANT_MARKER));

/// Position of the last assistant marker.
///
/// A forward SIMD scan keeping the last hit: memchr's reverse finder has no
/// vectorised path and was a tenth of the `binary` rule's time; occurrences
/// cannot overlap (the marker has no border), so the last non-overlapping
/// hit is the last one.
pub(crate) fn rfind_marker(hay: &str) -> Option<usize> {
    marker_positions(hay).last()
}

/// Where the assistant markers are, in order (they cannot overlap).
pub(crate) fn marker_positions(hay: &str) -> impl Iterator<Item = usize> + '_ {
    MARKER.find_iter(hay.as_bytes())
}

/// The first quote, backslash or control character at or after `p`,
/// eight bytes at a time.
pub(crate) fn special(b: &[u8], mut p: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    while let Some(word) = b.get(p..p + 8) {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        // The lowest flagged byte of each test is exact (higher ones may
        // be borrows), so the lowest of all three is the first hit.
        let hits = (zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hits != 0 {
            return Some(p + hits.trailing_zeros() as usize / 8);
        }
        p += 8;
    }
    b[p..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| p + i)
}

/// [`special`] with the first sixteen bytes checked at once (SIMD): most
/// JSON strings end within them.
#[inline]
pub(crate) fn special_short(b: &[u8], p: usize) -> Option<usize> {
    use wide::u8x16;
    let Some(block) = b.get(p..).and_then(|rest| rest.first_chunk::<16>()) else {
        return special(b, p);
    };
    let v = u8x16::from(*block);
    let hits = v.simd_eq(u8x16::splat(b'"'))
        | v.simd_eq(u8x16::splat(b'\\'))
        | v.min(u8x16::splat(0x1f)).simd_eq(v);
    match hits.to_bitmask() {
        0 => special(b, p + 16),
        mask => Some(p + mask.trailing_zeros() as usize),
    }
}
