//! How deeply a program nests, measured on its text before anything recursive reads it.
//!
//! Starlark's parser, its checks and its compiler recurse over the syntax tree, so a program
//! that nests deeply (brackets inside brackets, `- - - - x`, `a + b + c + ...`, blocks inside
//! blocks) can overflow the stack of whichever thread reads it: a gossip validator, an HTTP
//! worker, the chain thread. This scanner is a single pass over the bytes with memory bounded
//! by [`MAX_NESTING`], and measures an upper bound of the tree's depth:
//!
//! - each indentation level counts 1;
//! - each open bracket counts 1, plus 1 for every operator, keyword operator or `.` in the
//!   current element of each enclosing bracket (an element ends at a `,`) and in the current
//!   statement.
//!
//! A chain of operators builds a chain of nodes (`a + b + c` is `(a + b) + c`), and every node
//! of the tree is reached through an open bracket, an operator or a block, so the tree is no
//! deeper than a small multiple of this measure. `tests` parse and run the deepest program of
//! each shape the bound allows on a thread with a small stack.

/// The deepest a program may nest (see the module's documentation).
pub const MAX_NESTING: usize = 100;

/// Python's keywords that combine expressions (each may add a level to the tree).
const KEYWORD_OPERATORS: &[&[u8]] = &[b"and", b"or", b"not", b"if", b"else", b"in", b"is", b"lambda", b"for"];

/// Checks that `code` nests at most [`MAX_NESTING`] deep; the error says where it goes deeper.
pub fn check_nesting(code: &str) -> Result<(), String> {
    Scanner::default().scan(code.as_bytes())
}

#[derive(Default)]
struct Scanner {
    /// Operators counted in the current element of each open bracket; the first entry is the
    /// statement itself. Never longer than `MAX_NESTING + 1`: the scan stops before.
    elements: Vec<usize>,
    /// Widths of the open indentation levels. Never more than `MAX_NESTING`.
    indents: Vec<usize>,
    /// `indents.len()` plus, for each entry of `elements`, 1 plus its count.
    depth: usize,
    line: usize,
}

impl Scanner {
    fn scan(mut self, code: &[u8]) -> Result<(), String> {
        self.elements.push(0);
        self.depth = 1;
        self.line = 1;
        let mut i = 0;
        let mut at_line_start = true;
        while i < code.len() {
            if at_line_start && self.elements.len() == 1 {
                i = self.indentation(code, i)?;
                at_line_start = false;
                continue;
            }
            let byte = code[i];
            match byte {
                b'\n' => {
                    self.line += 1;
                    at_line_start = true;
                    if self.elements.len() == 1 {
                        self.reset_element();
                    }
                    i += 1;
                }
                b'#' => i = skip_to_line_end(code, i),
                b'\\' if code.get(i + 1) == Some(&b'\n') => {
                    self.line += 1;
                    i += 2;
                }
                b'\'' | b'"' => i = self.string(code, i),
                b'(' | b'[' | b'{' => {
                    self.operator()?;
                    self.elements.push(0);
                    self.grow(1)?;
                    i += 1;
                }
                b')' | b']' | b'}' => {
                    if self.elements.len() > 1 {
                        let count = self.elements.pop().unwrap_or(0);
                        self.depth -= count + 1;
                    }
                    i += 1;
                }
                b',' => {
                    self.reset_element();
                    i += 1;
                }
                b';' if self.elements.len() == 1 => {
                    self.reset_element();
                    i += 1;
                }
                b'0'..=b'9' => {
                    i = skip_while(code, i, |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                }
                b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                    let end = skip_while(code, i, |b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80);
                    if KEYWORD_OPERATORS.contains(&&code[i..end]) {
                        self.operator()?;
                    }
                    i = end;
                }
                b' ' | b'\t' | b'\r' | b'\x0c' => i += 1,
                _ => {
                    // Every other byte is an operator or punctuation: counting each one (`==`
                    // twice) only overestimates.
                    if byte != b':' {
                        self.operator()?;
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// Reads the indentation at the start of a logical line; blank and comment lines do not
    /// count.
    fn indentation(&mut self, code: &[u8], start: usize) -> Result<usize, String> {
        let end = skip_while(code, start, |b| b == b' ' || b == b'\t' || b == b'\x0c');
        if matches!(code.get(end), None | Some(b'\n' | b'\r' | b'#')) {
            return Ok(end);
        }
        let width = code[start..end].iter().map(|&b| if b == b'\t' { 8 } else { 1 }).sum::<usize>();
        while self.indents.last().is_some_and(|&open| width < open) {
            self.indents.pop();
            self.depth -= 1;
        }
        let innermost = self.indents.last().copied().unwrap_or(0);
        if width > innermost {
            self.indents.push(width);
            self.grow(1)?;
        }
        Ok(end)
    }

    fn string(&mut self, code: &[u8], start: usize) -> usize {
        let quote = code[start];
        let triple = code.get(start..start + 3) == Some(&[quote, quote, quote][..]);
        let mut i = if triple { start + 3 } else { start + 1 };
        while i < code.len() {
            match code[i] {
                b'\\' => i += 2,
                b'\n' if !triple => return i,
                b'\n' => {
                    self.line += 1;
                    i += 1;
                }
                b if b == quote && !triple => return i + 1,
                b if b == quote && code.get(i..i + 3) == Some(&[quote, quote, quote][..]) => return i + 3,
                _ => i += 1,
            }
        }
        code.len()
    }

    fn operator(&mut self) -> Result<(), String> {
        if let Some(count) = self.elements.last_mut() {
            *count += 1;
        }
        self.grow(1)
    }

    fn reset_element(&mut self) {
        if let Some(count) = self.elements.last_mut() {
            self.depth -= *count;
            *count = 0;
        }
    }

    fn grow(&mut self, by: usize) -> Result<(), String> {
        self.depth += by;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "line {} nests deeper than {MAX_NESTING} levels (brackets, operators and blocks)",
                self.line
            ));
        }
        Ok(())
    }
}

fn skip_to_line_end(code: &[u8], start: usize) -> usize {
    skip_while(code, start, |b| b != b'\n')
}

fn skip_while(code: &[u8], start: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut i = start;
    while i < code.len() && keep(code[i]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_programs_are_shallow() {
        for example in ["nft.star", "will.star", "game_asset.star", "splitter.star"] {
            let path = format!("{}/../examples/contracts/{example}", env!("CARGO_MANIFEST_DIR"));
            let code =
                std::fs::read_to_string(&path).expect("the example contracts ship with the repository");
            check_nesting(&code).unwrap_or_else(|e| panic!("{example}: {e}"));
        }
        let table = format!("T = [{}]\n", (0..2000).map(|i| format!("-{i}")).collect::<Vec<_>>().join(", "));
        assert_eq!(check_nesting(&table), Ok(()), "a long flat literal is not deep");
    }

    #[test]
    fn each_shape_of_nesting_is_measured() {
        let deep = MAX_NESTING + 1;
        let shapes = [
            format!("x = {}1{}\n", "(".repeat(deep), ")".repeat(deep)),
            format!("x = {}1\n", "-".repeat(deep)),
            format!("x = 1{}\n", " + 1".repeat(deep)),
            format!("x = {}1\n", "not ".repeat(deep)),
            format!("x = 1{}\n", " if 1 else 1".repeat(deep)),
            format!("x = {}1\n", "lambda: ".repeat(deep)),
            format!("x = y{}\n", ".a".repeat(deep)),
            format!("x = f{}\n", "()".repeat(deep)),
            (0..deep).map(|d| format!("{}if x:\n", "    ".repeat(d))).collect::<String>()
                + &"    ".repeat(deep)
                + "pass\n",
        ];
        for shape in shapes {
            let error = check_nesting(&shape).expect_err(&shape[..shape.len().min(40)]);
            assert!(error.contains("nests deeper than"), "{error}");
        }
    }

    #[test]
    fn operators_inside_strings_and_comments_do_not_count() {
        let code = format!(
            "x = \"{}\"  # {}\ny = '''{}\n{}'''\n",
            "(".repeat(500),
            "-".repeat(500),
            "[".repeat(500),
            "+".repeat(500)
        );
        assert_eq!(check_nesting(&code), Ok(()));
    }
}
