//! toolgym-grpo
