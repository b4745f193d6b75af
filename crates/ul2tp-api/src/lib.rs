//! ul2tp-api
