// RFC 4180 CSV parsing shared by user import and token import: quoted fields, doubled quotes, embedded commas and newlines, CRLF or LF, BOM.

/** One record and the line of the file it starts on (1-based), for error messages. */
export interface CSVRecord {
  line: number;
  fields: string[];
}

/** A malformed file; the message names the line and never quotes its content. */
export class CSVError extends Error {
  readonly code = "csv_format";
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = "CSVError";
  }
}

/**
 * Parses CSV text per RFC 4180 §2: fields separated by commas, records by CRLF (LF alone is
 * accepted too), fields optionally enclosed in double quotes, a quote inside a quoted field
 * written as two. A leading UTF-8 BOM is skipped; blank lines are skipped; a final line break
 * is optional.
 *
 * @throws CSVError for an unterminated quoted field or a stray quote (RFC 4180 §2.5: a field
 *   that contains a quote must be quoted).
 */
export function parseCSV(text: string): CSVRecord[] {
  const records: CSVRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    // A blank line (only a line break) is not a record.
    if (text[i] === "\n" || (text[i] === "\r" && text[i + 1] === "\n")) {
      i += text[i] === "\r" ? 2 : 1;
      line++;
      continue;
    }
    for (;;) {
      let field = "";
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= n) throw new CSVError(startLine, `line ${startLine}: a quoted field is not closed`);
          const c = text[i]!;
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === "\n") line++;
          field += c;
          i++;
        }
        const next = text[i];
        if (i < n && next !== "," && next !== "\n" && !(next === "\r" && text[i + 1] === "\n")) {
          throw new CSVError(line, `line ${line}: unexpected character after a closing quote`);
        }
      } else {
        const start = i;
        while (i < n && text[i] !== "," && text[i] !== "\n" && !(text[i] === "\r" && text[i + 1] === "\n")) {
          if (text[i] === '"') throw new CSVError(line, `line ${line}: a field containing a quote must be enclosed in quotes`);
          i++;
        }
        field = text.slice(start, i);
      }
      fields.push(field);
      if (i < n && text[i] === ",") {
        i++;
        continue;
      }
      // End of record: a line break or the end of the text.
      if (i < n) {
        i += text[i] === "\r" ? 2 : 1;
        line++;
      }
      break;
    }
    records.push({ line: startLine, fields });
  }
  return records;
}
