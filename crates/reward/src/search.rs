//! Fast substring search for the fixed tags (SIMD via `memchr::memmem`,
//! searchers built once).

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
    MARKER.find_iter(hay.as_bytes()).last()
}
