// Streams a greedy continuation of a prompt from a `difftx export --format onnx` folder, on ONNX
// Runtime in Node:  node serve-node.mjs EXPORT_DIR "prompt" [new tokens, default 32]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';

const [dir, prompt = 'The', steps = '32'] = process.argv.slice(2);
const read = (file) => JSON.parse(readFileSync(join(dir, file), 'utf8'));
const { model } = read('genai_config.json'); // names, cache heads and head size of the graph
const { decoder } = model;
const tokenizer = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
const session = await ort.InferenceSession.create(join(dir, decoder.filename));
const int64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
const name = (template, layer) => template.replace('%d', layer);
const stop = [model.eos_token_id].flat().filter((id) => id !== undefined);

// The KV cache: empty at first, then each step's present.N.key/value fed back as past_key_values.N.key/value.
const empty = () =>
  new ort.Tensor('float32', new Float32Array(0), [1, decoder.num_key_value_heads, 0, decoder.head_size]);
const past = {};
for (let layer = 0; layer < decoder.num_hidden_layers; layer++)
  for (const kind of ['key', 'value']) past[name(decoder.inputs[`past_${kind}_names`], layer)] = empty();
let input = tokenizer.encode(prompt).ids;
const [ids, started] = [[], performance.now()];
let [length, printed] = [0, ''];
for (let step = 0; step < Number(steps) && !stop.includes(ids.at(-1)); step++) {
  const positions = input.map((_, i) => length + i);
  length += input.length;
  const out = await session.run({
    ...past,
    [decoder.inputs.input_ids]: int64(input, [1, input.length]),
    [decoder.inputs.position_ids]: int64(positions, [1, input.length]),
    [decoder.inputs.attention_mask]: int64(new Array(length).fill(1), [1, length]),
  });
  const logits = out[decoder.outputs.logits];
  const last = logits.data.subarray(logits.data.length - logits.dims[2]); // the last token's row
  ids.push(last.reduce((best, v, i) => (v > last[best] ? i : best), 0)); // greedy
  const text = tokenizer.decode(ids, { skip_special_tokens: true }); // print what is new, whole characters only
  if (!text.endsWith('\uFFFD')) {
    process.stdout.write(text.slice(printed.length));
    printed = text;
  }
  for (let layer = 0; layer < decoder.num_hidden_layers; layer++)
    for (const kind of ['key', 'value'])
      past[name(decoder.inputs[`past_${kind}_names`], layer)] =
        out[name(decoder.outputs[`present_${kind}_names`], layer)];
  input = [ids.at(-1)];
}
console.error(`\n${JSON.stringify({ ids, tokensPerSecond: ids.length / ((performance.now() - started) / 1000) })}`);
