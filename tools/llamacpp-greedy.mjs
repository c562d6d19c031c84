// llamacpp-greedy: llama.cpp's side of tools/export-vs-llamacpp.sh, through node-llama-cpp's
// prebuilt library (CPU). Reads qbrief's JSON (build/tools/greedy-ids) on stdin, loads the
// GGUF, and prints one JSON object:
//   {"prompt_ids": llama.cpp's tokens of the prompt text (BOS as the file says),
//    "ids": its greedy continuation of qbrief's prompt ids (as many tokens as qbrief made),
//    "top1": its argmax at every position of qbrief's prompt + ids but the last,
//    "text": the continuation detokenized}
//
//   NODE_PATH=SCRATCH/node_modules node tools/llamacpp-greedy.mjs OUT.gguf "prompt" < qbrief.json
import { createRequire } from "module";
import { readFileSync } from "fs";
const require = createRequire(import.meta.url);
const { getLlama, LlamaLogLevel } = await import(
    require.resolve("node-llama-cpp", { paths: [process.env.NODE_PATH] }));

const [gguf, prompt] = process.argv.slice(2);
const q = JSON.parse(readFileSync(0, "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: gguf });
const n = q.ids.length, seq = q.prompt_ids.concat(q.ids);
const context = await model.createContext({ contextSize: Math.max(256, seq.length + 8),
                                            batchSize: 512, threads: 1, sequences: 2 });
const greedy = { token: true, options: { temperature: 0 } };

// greedy continuation of qbrief's prompt ids
let s = context.getSequence();
const ids = [];
let out = await s.controlledEvaluate(q.prompt_ids.map((t, i) =>
    i === q.prompt_ids.length - 1 ? [t, { generateNext: greedy }] : t));
ids.push(out[out.length - 1].next.token);
while (ids.length < n) {
    out = await s.controlledEvaluate([[ids[ids.length - 1], { generateNext: greedy }]]);
    ids.push(out[0].next.token);
}
s.dispose();

// argmax at every position of qbrief's own sequence (teacher-forced)
s = context.getSequence();
out = await s.controlledEvaluate(seq.slice(0, -1).map(t => [t, { generateNext: greedy }]));
const top1 = out.map(o => o.next.token);
s.dispose();

const promptIds = Array.from(model.tokenize(prompt));
if (model.tokens.bos != null && model.tokens.shouldPrependBosToken && promptIds[0] !== model.tokens.bos)
    promptIds.unshift(model.tokens.bos);
console.log(JSON.stringify({ prompt_ids: promptIds, ids, top1, text: model.detokenize(ids) }));
await context.dispose();
await model.dispose();
await llama.dispose();
