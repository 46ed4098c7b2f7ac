// Splits a byte stream into lines with bounded memory: bytes are decoded with a StringDecoder (a character split
// across chunks stays whole), a line is kept whole up to `maxLineChars` and cut and marked beyond, and the last line
// is delivered at the end whether or not a newline closes it. Linear in the input: each byte is looked at once.
import { StringDecoder } from 'node:string_decoder';

/** One MiB of characters: far more than any report or log line, far less than a runaway single-line output. */
export const DEFAULT_MAX_LINE_CHARS = 1024 * 1024;

export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private parts: string[] = [];
  private length = 0;
  private dropped = 0;
  private afterCR = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineChars = DEFAULT_MAX_LINE_CHARS,
  ) {}

  write(chunk: Buffer | string): void {
    this.feed(typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
  }

  /** Delivers what is left: the last line, even without a closing newline. */
  end(): void {
    this.feed(this.decoder.end());
    if (this.length > 0 || this.dropped > 0) this.flush();
  }

  private feed(text: string): void {
    let start = 0;
    // "\r\n" split across two chunks is one line end, not two.
    if (this.afterCR && text.startsWith('\n')) start = 1;
    this.afterCR = false;
    const ends = /\r\n|\n|\r/g;
    ends.lastIndex = start;
    for (let m = ends.exec(text); m; m = ends.exec(text)) {
      this.append(text.slice(start, m.index));
      this.flush();
      start = m.index + m[0].length;
      if (m[0] === '\r' && start === text.length) this.afterCR = true;
    }
    this.append(text.slice(start));
  }

  private append(piece: string): void {
    if (!piece) return;
    const room = this.maxLineChars - this.length;
    if (piece.length <= room) {
      this.parts.push(piece);
      this.length += piece.length;
    } else {
      if (room > 0) this.parts.push(piece.slice(0, room));
      this.length += Math.max(room, 0);
      this.dropped += piece.length - Math.max(room, 0);
    }
  }

  private flush(): void {
    const line = this.parts.join('');
    this.onLine(this.dropped > 0 ? `${line} [line cut: ${this.dropped} more characters]` : line);
    this.parts = [];
    this.length = 0;
    this.dropped = 0;
  }
}
