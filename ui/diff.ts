/** One line of a line diff: kept, removed (only before) or added (only after). */
export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

/** Past this many line pairs, the table of a longest common subsequence costs too much memory for a page. */
const MAX_CELLS = 4_000_000;

/**
 * A line diff of two texts, from their longest common subsequence (the lines kept), as `diff -u` shows it but
 * without hunks: values in a config store are small. Null when the texts are too long to compare line by line.
 */
export function diffLines(before: string, after: string): DiffLine[] | null {
  const a = before.split('\n');
  const b = after.split('\n');
  // Equal ends need no table: most edits touch a few lines of a value.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  if ((midA.length + 1) * (midB.length + 1) > MAX_CELLS) return null;
  // lcs[i][j]: length of the longest common subsequence of midA[i..] and midB[j..].
  const width = midB.length + 1;
  const lcs = new Uint32Array((midA.length + 1) * width);
  for (let i = midA.length - 1; i >= 0; i--) {
    for (let j = midB.length - 1; j >= 0; j--) {
      lcs[i * width + j] =
        midA[i] === midB[j]
          ? lcs[(i + 1) * width + j + 1]! + 1
          : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
    }
  }
  const out: DiffLine[] = a.slice(0, start).map((text) => ({ op: ' ', text }));
  let i = 0;
  let j = 0;
  while (i < midA.length || j < midB.length) {
    if (i < midA.length && j < midB.length && midA[i] === midB[j]) {
      out.push({ op: ' ', text: midA[i]! });
      i++;
      j++;
    } else if (i < midA.length && (j === midB.length || lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!)) {
      out.push({ op: '-', text: midA[i]! });
      i++;
    } else {
      out.push({ op: '+', text: midB[j]! });
      j++;
    }
  }
  for (const text of a.slice(endA)) out.push({ op: ' ', text });
  return out;
}
