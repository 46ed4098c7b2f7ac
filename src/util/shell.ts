// Quoting for POSIX shells: command lines shown in logs, job scripts, and commands run over SSH exec.

/** Quotes a word only when it needs it, so logged command lines stay readable. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line as a person would paste it into a shell. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map(shellQuote).join(' ');
}
