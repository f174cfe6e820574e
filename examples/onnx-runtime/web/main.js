// The demo page's script: a prompt box, the export's tokenizer, tokens streamed as they come.
// Bundle it (npx esbuild web/main.js --bundle --format=esm --outfile=web/main.bundle.js) and serve the
// web folder with the export copied to web/model/ and onnxruntime-web's dist/*.wasm, *.mjs in web/ort/.
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-web/wasm';
import { generateGreedy } from './generate.js';

ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
const base = new URL('model/', location.href);
const json = async (file) => (await fetch(new URL(file, base))).json();
const tokenizer = new Tokenizer(await json('tokenizer.json'), await json('tokenizer_config.json'));
const [prompt, output, button] = ['prompt', 'output', 'generate'].map((id) => document.getElementById(id));
button.addEventListener('click', async () => {
  button.disabled = true;
  const ids = [];
  output.textContent = '';
  await generateGreedy(ort, base, tokenizer.encode(prompt.value).ids, 64, {
    onToken: (id) => {
      ids.push(id);
      output.textContent = tokenizer.decode(ids, { skip_special_tokens: true });
    },
  });
  button.disabled = false;
});
