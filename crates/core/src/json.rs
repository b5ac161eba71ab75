//! Canonical JSON text, exact: two JSON texts canonicalize alike exactly
//! when PostgreSQL's `jsonb` calls them equal.
//!
//! Object keys are sorted (by their bytes) and a repeated key keeps its
//! last value, as `jsonb` does; white space goes; strings are re-escaped in
//! one way. Numbers are exact decimals: `12345678901234567890123` and
//! `…124` differ, `0.1` and `0.10000000000000001` differ, and `1`, `1.0`,
//! `1e0` and `10e-1` are one number (as in `jsonb`, whose numbers are
//! `numeric`); `-0` is `0`. A number is written out in full unless that
//! takes more than [`PLAIN_ZEROS`] zeros beyond its digits, and then as
//! `d.ddde±N`, so a short text never grows into a huge one.
//!
//! The parser is a loop over an explicit stack into a flat arena, so depth
//! costs memory, never the call stack: any nesting a database can store
//! canonicalizes (or is rejected as not JSON), never crashes.
//! Not parsing through `serde_json::Value`, which reads numbers as `f64`.

use crate::decimal::Parts;

/// Most zeros a number is padded with when written out in full.
pub const PLAIN_ZEROS: i64 = 20;

/// One parsed JSON value; containers hold indexes into the arena.
enum Node {
    /// Canonical text of a scalar: a range of [`Parser::scalars`].
    Scalar(usize, usize),
    Array(Vec<usize>),
    /// Members as (range of the decoded key in [`Parser::keys`], value).
    Object(Vec<((usize, usize), usize)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    nodes: Vec<Node>,
    scalars: String,
    keys: String,
}

/// The canonical text of a JSON document, or `None` if `text` is not JSON
/// (or holds a number beyond [`crate::decimal::MAX_EXPONENT`]).
pub fn canonical(text: &str) -> Option<String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        nodes: Vec::new(),
        scalars: String::new(),
        keys: String::new(),
    };
    let root = p.document()?;
    let keys = &p.keys;
    let key = |r: &(usize, usize)| &keys.as_bytes()[r.0..r.1];
    for node in &mut p.nodes {
        if let Node::Object(members) = node {
            // Stable, so among equal keys the last one written stays last.
            members.sort_by(|a, b| key(&a.0).cmp(key(&b.0)));
            let mut kept: Vec<((usize, usize), usize)> = Vec::with_capacity(members.len());
            for m in members.drain(..) {
                match kept.last_mut() {
                    Some(last) if key(&last.0) == key(&m.0) => *last = m,
                    _ => kept.push(m),
                }
            }
            *members = kept;
        }
    }
    Some(p.emit(root))
}

impl Parser<'_> {
    /// Parses the whole text as one value; returns the root node.
    fn document(&mut self) -> Option<usize> {
        // Open containers, each with the key its next value goes under.
        let mut stack: Vec<(usize, Option<(usize, usize)>)> = Vec::new();
        'value: loop {
            self.ws();
            let mut done = match self.peek()? {
                b'{' => {
                    self.i += 1;
                    let id = self.push(Node::Object(Vec::new()));
                    self.ws();
                    if self.eat(b'}') {
                        id
                    } else {
                        let k = self.key()?;
                        stack.push((id, Some(k)));
                        continue 'value;
                    }
                }
                b'[' => {
                    self.i += 1;
                    let id = self.push(Node::Array(Vec::new()));
                    self.ws();
                    if self.eat(b']') {
                        id
                    } else {
                        stack.push((id, None));
                        continue 'value;
                    }
                }
                _ => self.scalar()?,
            };
            // Hand the finished value to its container; close containers.
            loop {
                let Some(top) = stack.last_mut() else {
                    self.ws();
                    return (self.i == self.s.len()).then_some(done);
                };
                let is_object = match &mut self.nodes[top.0] {
                    Node::Array(items) => {
                        items.push(done);
                        false
                    }
                    Node::Object(members) => {
                        members.push((top.1.take()?, done));
                        true
                    }
                    Node::Scalar(..) => return None,
                };
                self.ws();
                match self.next()? {
                    b',' => {
                        if is_object {
                            top.1 = Some(self.key()?);
                        }
                        continue 'value;
                    }
                    b']' if !is_object => done = top.0,
                    b'}' if is_object => done = top.0,
                    _ => return None,
                }
                stack.pop();
            }
        }
    }

    fn push(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += hit as usize;
        hit
    }

    /// An object key and its colon; the decoded key's range in `keys`.
    fn key(&mut self) -> Option<(usize, usize)> {
        self.ws();
        if !self.eat(b'"') {
            return None;
        }
        let start = self.keys.len();
        let mut k = std::mem::take(&mut self.keys);
        let ok = self.string_body(&mut k);
        self.keys = k;
        ok?;
        let end = self.keys.len();
        self.ws();
        self.eat(b':').then_some((start, end))
    }

    /// A string, number or literal, written canonically into `scalars`.
    fn scalar(&mut self) -> Option<usize> {
        let start = self.scalars.len();
        match self.peek()? {
            b'"' => {
                self.i += 1;
                let mut decoded = String::new();
                self.string_body(&mut decoded)?;
                escape(&mut self.scalars, &decoded);
            }
            b'-' | b'0'..=b'9' => {
                let n = self.number()?;
                write_number(&mut self.scalars, &n);
            }
            _ => {
                let word = ["true", "false", "null"]
                    .into_iter()
                    .find(|w| self.s[self.i..].starts_with(w.as_bytes()))?;
                self.i += word.len();
                self.scalars.push_str(word);
            }
        }
        Some(self.push(Node::Scalar(start, self.scalars.len())))
    }

    /// JSON's number grammar, strictly (no `+`, no leading zeros, digits on
    /// both sides of a point), read exactly.
    fn number(&mut self) -> Option<Parts> {
        let start = self.i;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - from
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return None;
        }
        if self.eat(b'.') && digits(self) == 0 {
            return None;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if digits(self) == 0 {
                return None;
            }
        }
        // The bytes just checked are ASCII, so this slice is on char bounds.
        Parts::parse(std::str::from_utf8(&self.s[start..self.i]).ok()?)
    }

    /// The rest of a string after its opening quote, decoded into `out`.
    fn string_body(&mut self, out: &mut String) -> Option<()> {
        loop {
            let run = self.i;
            while self
                .peek()
                .is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20)
            {
                self.i += 1;
            }
            // The input is a &str and runs end at ASCII bytes: valid UTF-8.
            out.push_str(std::str::from_utf8(&self.s[run..self.i]).ok()?);
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => {
                    let c = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    out.push(c);
                }
                // A raw control character: not JSON.
                _ => return None,
            }
        }
    }

    /// The code point of `\uXXXX` (its `\u` already read), joining a
    /// surrogate pair; a lone surrogate is not text, so not JSON.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if !(self.eat(b'\\') && self.eat(b'u')) {
                return None;
            }
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        char::from_u32(hi)
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let mut v = 0;
        for &c in h {
            v = v * 16 + (c as char).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// Writes the canonical text of the tree under `root`, with a work stack
    /// rather than recursion.
    fn emit(&self, root: usize) -> String {
        enum Work {
            Value(usize),
            Key(usize, usize),
            Lit(&'static str),
        }
        let mut out = String::with_capacity(self.scalars.len() + self.keys.len() + 16);
        let mut work = vec![Work::Value(root)];
        while let Some(w) = work.pop() {
            match w {
                Work::Lit(s) => out.push_str(s),
                Work::Key(a, b) => {
                    escape(&mut out, &self.keys[a..b]);
                    out.push(':');
                }
                Work::Value(id) => match &self.nodes[id] {
                    Node::Scalar(a, b) => out.push_str(&self.scalars[*a..*b]),
                    Node::Array(items) => {
                        out.push('[');
                        work.push(Work::Lit("]"));
                        for (n, &v) in items.iter().enumerate().rev() {
                            work.push(Work::Value(v));
                            if n > 0 {
                                work.push(Work::Lit(","));
                            }
                        }
                    }
                    Node::Object(members) => {
                        out.push('{');
                        work.push(Work::Lit("}"));
                        for (n, &((a, b), v)) in members.iter().enumerate().rev() {
                            work.push(Work::Value(v));
                            work.push(Work::Key(a, b));
                            if n > 0 {
                                work.push(Work::Lit(","));
                            }
                        }
                    }
                },
            }
        }
        out
    }
}

/// A JSON string literal for `s`, escaped as `serde_json` escapes.
fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The canonical text of an exact number (see the module comment).
pub fn write_number(out: &mut String, n: &Parts) {
    let len = n.digits.len() as i64;
    let zeros = if n.exp >= 0 {
        n.exp
    } else {
        (-n.exp - len).max(0)
    };
    if n.digits.is_empty() || zeros <= PLAIN_ZEROS {
        n.write_plain(out);
        return;
    }
    if n.neg {
        out.push('-');
    }
    let ch = |d: &u8| (b'0' + d) as char;
    out.push(ch(&n.digits[0]));
    if len > 1 {
        out.push('.');
        out.extend(n.digits[1..].iter().map(ch));
    }
    out.push('e');
    out.push_str(&(n.exp + len - 1).to_string());
}

#[cfg(test)]
mod tests {
    use super::canonical;

    fn c(s: &str) -> String {
        canonical(s).unwrap_or_else(|| panic!("not JSON: {s}"))
    }

    #[test]
    fn structure_is_canonical() {
        assert_eq!(
            c(r#" { "b" : 1 , "a" : [ true , null , "x" ] } "#),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
        assert_eq!(c(r#"{"a":1,"a":2}"#), r#"{"a":2}"#);
        assert_eq!(c(r#"{"a":{"z":1,"y":2},"a":3}"#), r#"{"a":3}"#);
        assert_eq!(c("[]"), "[]");
        assert_eq!(c("{}"), "{}");
        assert_eq!(
            c(r#""\u0041\/\u00e9\ud83d\ude00\n\u001f""#),
            "\"A/é😀\\n\\u001f\""
        );
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "tru",
            "\"\\ud800\"",
            "\"a\nb\"",
            "[1] 2",
            "{1:2}",
            "nul",
            "\"\\x\"",
            "-",
        ] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn numbers_are_exact() {
        let pairs_differ = [
            ("12345678901234567890123", "12345678901234567890124"),
            ("0.1", "0.10000000000000001"),
            ("18446744073709551616", "18446744073709551617"),
            ("1e400", "1.0000000000000000000001e400"),
            ("-1e-400", "-1.0000000000000000000001e-400"),
            ("9007199254740993", "9007199254740992"),
        ];
        for (a, b) in pairs_differ {
            let (x, y) = (format!("{{\"n\":{a}}}"), format!("{{\"n\":{b}}}"));
            assert_ne!(c(&x), c(&y), "{a} vs {b}");
            assert_eq!(c(&x), c(&format!("{{ \"n\" : {a} }}")));
        }
        let equal = [
            ("1", &["1.0", "1e0", "10e-1", "1.000E+0", "0.1e1"][..]),
            ("0", &["-0", "0.0", "-0.0e5", "0e-7"][..]),
            ("-2.5", &["-25e-1", "-2.50"][..]),
            ("1e21", &["1000000000000000000000"][..]),
            ("100000000000000000000", &["1e20"][..]),
        ];
        for (canon, forms) in equal {
            for f in forms {
                assert_eq!(c(f), c(canon), "{f}");
            }
        }
        assert_eq!(c("100000000000000000000"), "100000000000000000000");
        assert_eq!(c("1e21"), "1e21");
        assert_eq!(c("0.000000000000000000001"), "0.000000000000000000001");
        assert_eq!(c("1e-22"), "1e-22");
        assert_eq!(c("-1.25e-400"), "-1.25e-400");
        assert_eq!(c("12345678901234567890123"), "12345678901234567890123");
        assert_eq!(c("1e5000"), "1e5000");
        assert_eq!(canonical("1e999999999"), None);
    }

    /// Numbers deep inside arrays and objects are as exact as at the top.
    #[test]
    fn nested_numbers_and_depth() {
        for depth in [1usize, 2, 10, 1000, 100_000] {
            let wrap = |n: &str| {
                let mut s = String::new();
                for i in 0..depth {
                    s.push_str(if i % 2 == 0 { "[" } else { "{\"k\":" });
                }
                s.push_str(n);
                for i in (0..depth).rev() {
                    s.push(if i % 2 == 0 { ']' } else { '}' });
                }
                s
            };
            let a = c(&wrap("12345678901234567890123"));
            assert_ne!(a, c(&wrap("12345678901234567890124")), "{depth}");
            assert_eq!(a, c(&wrap("1.2345678901234567890123e22")), "{depth}");
            // Unbalanced at any depth is not JSON.
            let mut broken = wrap("1");
            broken.pop();
            assert_eq!(canonical(&broken), None);
        }
    }
}
