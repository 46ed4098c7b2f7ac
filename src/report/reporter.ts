// How stages talk to the person running them. The action and the CLI each provide one; stages never write to
// stdout or call @actions/core themselves, so both front ends show the same things.
import type { Summary } from './summary.js';

export interface Location {
  file: string;
  line?: number;
  column?: number;
}

export interface Reporter {
  info(message: string): void;
  warning(message: string, location?: Location): void;
  error(message: string, location?: Location): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  setOutput(name: string, value: string): void;
  /** Registers a value that must never be shown; later messages have it replaced by `***`. */
  setSecret(value: string): void;
  summary(summary: Summary): Promise<void>;
}

/** Replaces every registered secret (and each of its lines, for multi-line keys) in a message. */
export class Masker {
  private readonly secrets: string[] = [];

  add(value: string): void {
    for (const part of [value, ...value.split(/\r?\n/)]) {
      const trimmed = part.trim();
      if (trimmed.length >= 3 && !this.secrets.includes(trimmed)) this.secrets.push(trimmed);
    }
    // Longest first, so a secret that contains another is masked whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }
}
