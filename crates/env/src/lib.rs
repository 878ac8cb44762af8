//! toolgym-env
