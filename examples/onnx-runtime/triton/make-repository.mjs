// Lays out a Triton Inference Server model repository for a `difftx export --format onnx` folder,
// served by Triton's ONNX Runtime backend:
//   node triton/make-repository.mjs EXPORT_DIR REPOSITORY [MODEL_NAME=difftx] [KIND_CPU|KIND_GPU]
// → REPOSITORY/MODEL_NAME/config.pbtxt and REPOSITORY/MODEL_NAME/1/model.onnx (+ model.onnx.data).
// Every axis that varies (batch, sequence, cache length) is -1, and max_batch_size is 0: the graph's
// own first axis is the batch. Requests are stateless: the client sends the cache back each step.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function tritonConfig(genaiConfig, name = 'difftx', kind = 'KIND_CPU') {
  const { decoder, vocab_size: vocab } = genaiConfig.model;
  const cache = [-1, decoder.num_key_value_heads, -1, decoder.head_size];
  const tensor = (tensorName, type, dims) =>
    `  {\n    name: "${tensorName}"\n    data_type: ${type}\n    dims: [ ${dims.join(', ')} ]\n  }`;
  const layers = Array.from({ length: decoder.num_hidden_layers }, (_, i) => i);
  const each = (template) => layers.map((i) => template.replace('%d', i));
  const inputs = [
    tensor(decoder.inputs.input_ids, 'TYPE_INT64', [-1, -1]),
    tensor(decoder.inputs.attention_mask, 'TYPE_INT64', [-1, -1]),
    tensor(decoder.inputs.position_ids, 'TYPE_INT64', [-1, -1]),
    ...layers
      .flatMap((i) => [each(decoder.inputs.past_key_names)[i], each(decoder.inputs.past_value_names)[i]])
      .map((n) => tensor(n, 'TYPE_FP32', cache)),
  ];
  const outputs = [
    tensor(decoder.outputs.logits, 'TYPE_FP32', [-1, -1, vocab]),
    ...layers
      .flatMap((i) => [each(decoder.outputs.present_key_names)[i], each(decoder.outputs.present_value_names)[i]])
      .map((n) => tensor(n, 'TYPE_FP32', cache)),
  ];
  return [
    `name: "${name}"`,
    'backend: "onnxruntime"',
    'max_batch_size: 0',
    `input [\n${inputs.join(',\n')}\n]`,
    `output [\n${outputs.join(',\n')}\n]`,
    `instance_group [\n  {\n    count: 1\n    kind: ${kind}\n  }\n]`,
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [exportDir, repository, name = 'difftx', kind = 'KIND_CPU'] = process.argv.slice(2);
  if (!exportDir || !repository) {
    console.error('usage: node triton/make-repository.mjs EXPORT_DIR REPOSITORY [MODEL_NAME] [KIND_CPU|KIND_GPU]');
    process.exit(2);
  }
  const genai = JSON.parse(readFileSync(join(exportDir, 'genai_config.json'), 'utf8'));
  mkdirSync(join(repository, name, '1'), { recursive: true });
  for (const file of [genai.model.decoder.filename, `${genai.model.decoder.filename}.data`]) {
    if (existsSync(join(exportDir, file))) copyFileSync(join(exportDir, file), join(repository, name, '1', file));
  }
  writeFileSync(join(repository, name, 'config.pbtxt'), tritonConfig(genai, name, kind));
  console.log(
    `wrote ${join(repository, name)}: config.pbtxt and 1/ (serve with: tritonserver --model-repository=${repository})`,
  );
}
