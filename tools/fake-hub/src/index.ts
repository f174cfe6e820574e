/** Test plumbing: a loopback Hugging Face Hub and a tiny DiffLlama repository to serve from it. */
export { type FakeHub, type RepoOptions, type SeenRequest, startFakeHub } from './server.js';
export { tinyDiffLlamaFiles } from './tiny-model.js';
