/**
 * Greedy decoding of a `difftx export --format onnx` folder served over HTTP, with onnxruntime-web
 * (`ort`, passed in: `import * as ort from 'onnxruntime-web'`) on its WebAssembly execution provider.
 * `base` is the folder's URL (ending in '/'); `onToken(id)` sees each id as it is chosen.
 */
export async function generateGreedy(
  ort,
  base,
  promptIds,
  steps,
  { onToken = () => {}, executionProviders = ['wasm'] } = {},
) {
  const { model } = await (await fetch(new URL('genai_config.json', base))).json();
  const { decoder } = model;
  const session = await ort.InferenceSession.create(new URL(decoder.filename, base).href, { executionProviders });
  const int64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
  const name = (template, layer) => template.replace('%d', layer);
  const past = {};
  for (let layer = 0; layer < decoder.num_hidden_layers; layer++) {
    for (const kind of ['key', 'value']) {
      const dims = [1, decoder.num_key_value_heads, 0, decoder.head_size];
      past[name(decoder.inputs[`past_${kind}_names`], layer)] = new ort.Tensor('float32', new Float32Array(0), dims);
    }
  }
  const ids = [];
  let input = [...promptIds];
  let length = 0;
  try {
    for (let step = 0; step < steps; step++) {
      const positions = input.map((_, i) => length + i);
      length += input.length;
      const out = await session.run({
        ...past,
        [decoder.inputs.input_ids]: int64(input, [1, input.length]),
        [decoder.inputs.position_ids]: int64(positions, [1, input.length]),
        [decoder.inputs.attention_mask]: int64(new Array(length).fill(1), [1, length]),
      });
      const logits = out[decoder.outputs.logits];
      const last = logits.data.subarray(logits.data.length - logits.dims[2]);
      const next = last.reduce((best, v, i) => (v > last[best] ? i : best), 0);
      ids.push(next);
      onToken(next);
      for (let layer = 0; layer < decoder.num_hidden_layers; layer++) {
        for (const kind of ['key', 'value']) {
          past[name(decoder.inputs[`past_${kind}_names`], layer)] =
            out[name(decoder.outputs[`present_${kind}_names`], layer)];
        }
      }
      input = [next];
    }
  } finally {
    await session.release();
  }
  return ids;
}
