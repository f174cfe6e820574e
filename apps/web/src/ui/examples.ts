/**
 * Example texts. The needle prompt is retrieval-style: one fact (the pass key) among distractor
 * sentences, then the question; a model that retrieves attends from the last tokens to the needle, and
 * the paper's Figure 1 shows differential attention putting less weight on the distractors.
 */
export const NEEDLE_PROMPT =
  'The grass is green. The sky is blue. The pass key is 4271. The sun is warm. ' +
  'The sea is deep. The hill is high. What is the pass key? The pass key is';

/** Training text: public-domain sentences in the Brown corpus's register, repeated rhythm on purpose. */
export const TRAINING_TEXT = [
  'The Fulton County Grand Jury said Friday an investigation of recent primary elections produced no evidence',
  'that any irregularities took place. The jury further said in term-end presentments that the City Executive',
  'Committee, which had over-all charge of the election, deserves the praise and thanks of the City of Atlanta',
  'for the manner in which the election was conducted. The September-October term jury had been charged by',
  'Fulton Superior Court Judge Durwood Pye to investigate reports of possible irregularities in the hard-fought',
  'primary which was won by Mayor-nominate Ivan Allen Jr. Only a relative handful of such reports was received,',
  'the jury said, considering the widespread interest in the election, the number of voters and the size of',
  'this city. The jury said it did find that many of the registration and election laws are outmoded or',
  'inadequate and often ambiguous. It recommended that Fulton legislators act to have these laws studied and',
  'revised to the end of modernizing and improving them.',
].join('\n');
