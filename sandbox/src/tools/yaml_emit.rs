//! The libyaml emitter as gopkg.in/yaml.v2 ports it (`emitterc.go`), reduced to what hook tool
//! output needs: block mappings and sequences, empty ones as `[]`/`{}`, and scalars in plain,
//! single-quoted, double-quoted or literal style with libyaml's checks and 80-column folding.

use super::yaml::{Node, Style};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i32 = 2;

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    c.is_none_or(|c| c == ' ' || c == '\t' || is_break(c))
}

/// libyaml's `IS_PRINTABLE`.
fn printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

/// What libyaml's `yaml_emitter_analyze_scalar` allows for a scalar.
struct Allowed {
    multiline: bool,
    plain: bool,
    single: bool,
    block: bool,
}

fn analyze(s: &str) -> Allowed {
    let cs: Vec<char> = s.chars().collect();
    if cs.is_empty() {
        return Allowed {
            multiline: false,
            plain: true,
            single: true,
            block: false,
        };
    }
    let mut indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut space_break, mut break_space) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let last = cs.len() - 1;
    for (i, &c) in cs.iter().enumerate() {
        let followed_by_ws = is_blank_or_end(cs.get(i + 1).copied());
        if i == 0 {
            indicators |=
                "#,[]{}&*!|>'\"%@`".contains(c) || (matches!(c, '?' | ':' | '-') && followed_by_ws);
        } else {
            indicators |= (c == ':' && followed_by_ws) || (c == '#' && preceded_by_ws);
        }
        special |= !printable(c);
        line_breaks |= is_break(c);
        if c == ' ' {
            break_space |= prev_break;
            (prev_space, prev_break) = (true, false);
        } else if is_break(c) {
            space_break |= prev_space;
            (prev_space, prev_break) = (false, true);
        } else {
            (prev_space, prev_break) = (false, false);
        }
        preceded_by_ws = is_blank_or_end(Some(c));
    }
    let edge_space = cs[0] == ' ' || cs[last] == ' ';
    let edge_break = is_break(cs[0]) || is_break(cs[last]);
    Allowed {
        multiline: line_breaks,
        plain: !(edge_space
            || edge_break
            || break_space
            || space_break
            || special
            || line_breaks
            || indicators),
        single: !(break_space || space_break || special),
        block: !(cs[last] == ' ' || space_break || special),
    }
}

/// The emitter's state: output, column and libyaml's indentation flags.
#[derive(Default)]
pub(super) struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: i32,
    indents: Vec<i32>,
}

impl Emitter {
    /// The whole document for one root node, as `yaml.Marshal` writes it.
    pub fn document(root: &Node) -> String {
        let mut e = Emitter {
            whitespace: true,
            indention: true,
            indent: -1,
            ..Emitter::default()
        };
        e.node(root, false, false);
        e.write_indent();
        e.out
    }

    /// Writes one character; a newline also marks the start of a line (yaml.v2's `put_break`).
    fn put(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
            self.indention = true;
        } else {
            self.column += 1;
        }
    }

    fn push_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put('\n');
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn indicator(&mut self, s: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        s.chars().for_each(|c| self.put(c));
        self.whitespace = is_ws;
        self.indention &= is_indention;
    }

    /// Emits a node; `mapping` and `simple_key` are libyaml's contexts for it.
    fn node(&mut self, n: &Node, mapping: bool, simple_key: bool) {
        match n {
            Node::Scalar(s, style) => self.scalar(s, *style, simple_key),
            Node::Seq(items) if items.is_empty() => self.indicator("[]", true, false, false),
            Node::Map(entries) if entries.is_empty() => self.indicator("{}", true, false, false),
            Node::Seq(items) => {
                let indentless = mapping && !self.indention;
                self.push_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.indicator("-", true, false, true);
                    self.node(item, false, false);
                }
                self.pop_indent();
            }
            Node::Map(entries) => {
                self.push_indent(false, false);
                for (k, v) in entries {
                    self.write_indent();
                    match k {
                        Node::Scalar(s, _) if !s.contains(is_break) && s.len() <= 128 => {
                            self.node(k, true, true);
                            self.indicator(":", false, false, false);
                        }
                        _ => {
                            self.indicator("?", true, false, true);
                            self.node(k, true, false);
                            self.write_indent();
                            self.indicator(":", true, false, true);
                        }
                    }
                    self.node(v, true, false);
                }
                self.pop_indent();
            }
        }
    }

    fn scalar(&mut self, s: &str, requested: Style, simple_key: bool) {
        let a = analyze(s);
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.plain || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || simple_key) {
            style = Style::Double;
        }
        self.push_indent(true, false);
        match style {
            Style::Plain => self.plain(s, !simple_key),
            Style::Single => self.single(s, !simple_key),
            Style::Double => self.double(s, !simple_key),
            Style::Literal => self.literal(s),
        }
        self.pop_indent();
    }

    /// Whether to fold at the space at `i` (libyaml's long-line rule).
    fn fold_here(&self, cs: &[char], i: usize, allow_breaks: bool, spaces: bool) -> bool {
        allow_breaks && !spaces && self.column > BEST_WIDTH && cs.get(i + 1) != Some(&' ')
    }

    fn plain(&mut self, s: &str, allow_breaks: bool) {
        if !s.is_empty() && !self.whitespace {
            self.put(' ');
        }
        let cs: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in cs.iter().enumerate() {
            if c == ' ' {
                if self.fold_here(&cs, i, allow_breaks, spaces) {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        if !s.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn single(&mut self, s: &str, allow_breaks: bool) {
        self.indicator("'", true, false, false);
        let cs: Vec<char> = s.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in cs.iter().enumerate() {
            if c == ' ' {
                let inner = i != 0 && i + 1 != cs.len();
                if inner && self.fold_here(&cs, i, allow_breaks, spaces) {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put('\n');
                }
                self.put(c);
                self.column = 0;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                (spaces, breaks) = (false, false);
            }
        }
        self.indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, s: &str, allow_breaks: bool) {
        self.indicator("\"", true, false, false);
        let cs: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in cs.iter().enumerate() {
            if !printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let esc = match c {
                    '\0' => "0".to_string(),
                    '\u{7}' => "a".into(),
                    '\u{8}' => "b".into(),
                    '\t' => "t".into(),
                    '\n' => "n".into(),
                    '\u{b}' => "v".into(),
                    '\u{c}' => "f".into(),
                    '\r' => "r".into(),
                    '\u{1b}' => "e".into(),
                    '"' => "\"".into(),
                    '\\' => "\\".into(),
                    '\u{85}' => "N".into(),
                    '\u{2028}' => "L".into(),
                    '\u{2029}' => "P".into(),
                    c if (c as u32) <= 0xFF => format!("x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("u{:04X}", c as u32),
                    c => format!("U{:08X}", c as u32),
                };
                esc.chars().for_each(|e| self.put(e));
                spaces = false;
            } else if c == ' ' {
                let inner = i != 0 && i + 1 != cs.len();
                if inner && allow_breaks && !spaces && self.column > BEST_WIDTH {
                    self.write_indent();
                    if cs.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, s: &str) {
        self.indicator("|", true, false, false);
        let cs: Vec<char> = s.chars().collect();
        if cs.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let n = cs.len();
        let chomp = match (cs.last(), n) {
            (Some(&c), _) if !is_break(c) => "-",
            (_, 1) => "+",
            _ if is_break(cs[n - 2]) => "+",
            _ => "",
        };
        self.indicator(chomp, false, false, false);
        self.put('\n');
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &cs {
            if is_break(c) {
                self.put(c);
                self.column = 0;
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}
