//! ul2tp-sys
