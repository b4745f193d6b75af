//! ul2tp-core
