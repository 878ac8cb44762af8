//! toolgym
