// Typo suggestions ("did you mean ...?") for definition keywords and CLI commands: the nearest candidate by edit
// distance, counting a swap of two neighbouring letters as one edit.

/** The candidate nearest to `word` by edit distance, when it is close enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // Allow about one slip per three letters, so short names do not match everything.
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  if (best !== undefined && bestDistance <= limit) return best;
  // An abbreviation such as %env or %run.
  const prefixed = candidates.filter((c) => word.length >= 3 && c.toLowerCase().startsWith(word.toLowerCase()));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** Edits (insert, delete, replace, swap two neighbours) between two words; a swap is a common typo. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
