//! A streaming JSON writer that lays text out the way iproute2's `json_writer` does, so
//! `ul2tp -j` / `-j -p` output is byte-identical to `ip -j l2tp` / `ip -j -p l2tp`:
//! compact output has no white space at all; pretty output indents by four spaces per level,
//! writes `name: value`, opens a top-level array as `[ ` and closes it as ` ]`.
//! Strings are escaped with serde_json, so the output is always valid JSON.

/// The writer; text accumulates in [`JsonWriter::finish`]'s result.
#[derive(Debug, Default)]
pub struct JsonWriter {
    out: String,
    depth: usize,
    pretty: bool,
    /// iproute2's `sep`: whether a comma is due before the next element.
    comma: bool,
}

impl JsonWriter {
    /// A writer, compact or pretty.
    pub fn new(pretty: bool) -> Self {
        Self {
            pretty,
            ..Self::default()
        }
    }

    fn eol(&mut self) {
        if self.pretty {
            self.out.push('\n');
            for _ in 0..self.depth {
                self.out.push_str("    ");
            }
        }
    }

    fn eor(&mut self) {
        if self.comma {
            self.out.push(',');
        }
        self.comma = true;
    }

    fn begin(&mut self, c: char) {
        self.eor();
        self.out.push(c);
        self.depth += 1;
        self.comma = false;
    }

    fn end(&mut self, c: char) {
        self.depth = self.depth.saturating_sub(1);
        if self.comma {
            self.eol();
        }
        self.out.push(c);
        self.comma = true;
    }

    /// `[` (pretty: `[ `).
    pub fn start_array(&mut self) {
        self.begin('[');
        if self.pretty {
            self.out.push(' ');
        }
    }

    /// `]` (pretty and non-empty: ` ]`).
    pub fn end_array(&mut self) {
        if self.pretty && self.comma {
            self.out.push(' ');
        }
        self.comma = false;
        self.end(']');
    }

    /// `{`.
    pub fn start_object(&mut self) {
        self.begin('{');
    }

    /// `"name": {` (closed by [`JsonWriter::end_object`]).
    pub fn start_object_named(&mut self, name: &str) {
        self.name(name);
        self.begin('{');
    }

    /// `}`.
    pub fn end_object(&mut self) {
        self.end('}');
    }

    fn name(&mut self, name: &str) {
        self.eor();
        self.eol();
        self.comma = false;
        self.push_str_literal(name);
        self.out.push(':');
        if self.pretty {
            self.out.push(' ');
        }
    }

    fn push_str_literal(&mut self, s: &str) {
        // serde_json never fails on a &str.
        self.out
            .push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
    }

    fn raw_value(&mut self, v: &str) {
        self.eor();
        self.out.push_str(v);
    }

    /// `"name": <unsigned>`.
    pub fn uint(&mut self, name: &str, v: u64) {
        self.name(name);
        self.raw_value(&v.to_string());
    }

    /// `"name": "<string>"`.
    pub fn string(&mut self, name: &str, v: &str) {
        self.name(name);
        self.eor();
        self.push_str_literal(v);
    }

    /// `"name": ["<string>",...]`.
    pub fn string_array<'a>(&mut self, name: &str, items: impl IntoIterator<Item = &'a str>) {
        self.name(name);
        self.start_array();
        for v in items {
            self.eor();
            self.push_str_literal(v);
        }
        self.end_array();
    }

    /// `"name": true|false`.
    pub fn boolean(&mut self, name: &str, v: bool) {
        self.name(name);
        self.raw_value(if v { "true" } else { "false" });
    }

    /// `"name": null`.
    pub fn null(&mut self, name: &str) {
        self.name(name);
        self.raw_value("null");
    }

    /// The text written so far, with iproute2's closing newline.
    pub fn finish(mut self) -> String {
        self.out.push('\n');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pretty: bool, objects: usize) -> String {
        let mut w = JsonWriter::new(pretty);
        w.start_array();
        for i in 0..objects {
            w.start_object();
            w.uint("id", i as u64);
            w.string("s", "a\"b");
            w.boolean("b", true);
            w.null("n");
            w.end_object();
        }
        w.end_array();
        w.finish()
    }

    #[test]
    fn compact_layout() {
        assert_eq!(sample(false, 0), "[]\n");
        assert_eq!(
            sample(false, 2),
            "[{\"id\":0,\"s\":\"a\\\"b\",\"b\":true,\"n\":null},{\"id\":1,\"s\":\"a\\\"b\",\"b\":true,\"n\":null}]\n"
        );
    }

    #[test]
    fn pretty_layout_matches_iproute2() {
        // `ip -j -p neigh show dev lo` with nothing to list prints "[ ]".
        assert_eq!(sample(true, 0), "[ ]\n");
        assert_eq!(
            sample(true, 2),
            "[ {\n        \"id\": 0,\n        \"s\": \"a\\\"b\",\n        \"b\": true,\n        \"n\": null\n    },{\n        \"id\": 1,\n        \"s\": \"a\\\"b\",\n        \"b\": true,\n        \"n\": null\n    } ]\n"
        );
    }

    #[test]
    fn output_is_valid_json() {
        for pretty in [false, true] {
            let v: serde_json::Value = serde_json::from_str(&sample(pretty, 3)).unwrap();
            assert_eq!(v.as_array().map(Vec::len), Some(3));
            assert_eq!(v[2]["id"], 2);
        }
    }
}
