/** The browser test's page: onnxruntime-web (WebAssembly) running an export served beside it. */
import * as ort from 'onnxruntime-web/wasm';
// @ts-expect-error: a plain ES module of the example, without types.
import { generateGreedy } from '../web/generate.js';

declare global {
  interface Window {
    generateInPage(promptIds: number[], steps: number): Promise<{ ids: number[] } | { error: string }>;
  }
}

ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
ort.env.wasm.numThreads = 1;

window.generateInPage = async (promptIds, steps) => {
  try {
    return { ids: await generateGreedy(ort, new URL('/model/', location.href), promptIds, steps) };
  } catch (error) {
    return { error: String((error as Error)?.stack ?? error) };
  }
};
