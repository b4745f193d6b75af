//! ul2tp-control
