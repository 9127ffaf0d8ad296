/**
 * Where a Python line may be IPython syntax. `!cmd` and `%magic` are only
 * IPython at the start of a statement line: inside brackets, a string or a
 * backslash continuation the same text is Python (`x = (1\n%os.system("id"))`
 * is a modulo), and taking it out would run code the analyser never saw.
 *
 * native/analyze.py has the same scanner and patterns (its `LineScanner`);
 * the two must agree exactly, so both stay simple rather than clever.
 */

/** A cell magic (`%%bash`) on the first non-blank line makes the whole cell non-Python. */
export const CELL_MAGIC = /^%%([A-Za-z0-9_]*)/;
/** A line magic (`%pip install x`, also `% pip`): its name and the rest of the line. */
export const LINE_MAGIC = /^%[ \t]*([A-Za-z0-9_]+)[ \t]*([\s\S]*)$/;
/** Blank as both sides read it (not `trim()`, whose idea of space differs from Python's). */
export const BLANK = /^[ \t\r\f\v]*$/;

export class LineScanner {
  private depth = 0;
  /** The open string's quote: `'`, `"`, `'''` or `"""`. */
  private quote: string | null = null;
  private continued = false;

  /** True when the next line starts a statement (outside brackets, strings, continuations). */
  statementLine(): boolean {
    return this.depth === 0 && this.quote === null && !this.continued;
  }

  /** Reads one line of code (never a line taken out as IPython). */
  feed(text: string): void {
    const line = text.endsWith("\r") ? text.slice(0, -1) : text;
    this.continued = false;
    let i = 0;
    while (i < line.length) {
      const c = line[i]!;
      if (this.quote !== null) {
        if (c === "\\") i += 2;
        else if (line.startsWith(this.quote, i)) {
          i += this.quote.length;
          this.quote = null;
        } else i += 1;
        continue;
      }
      if (c === "#") break;
      if (c === "'" || c === '"') {
        this.quote = line.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
        i += this.quote.length;
        continue;
      }
      if ("([{".includes(c)) this.depth++;
      else if (")]}".includes(c)) this.depth = Math.max(0, this.depth - 1);
      else if (c === "\\" && i === line.length - 1) this.continued = true;
      i++;
    }
    // A one-quote string goes on to the next line only after a backslash.
    if ((this.quote === "'" || this.quote === '"') && !line.endsWith("\\")) this.quote = null;
  }
}
