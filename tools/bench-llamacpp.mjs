// bench-llamacpp: llama.cpp's side of tools/bench-vs-llamacpp.sh, through node-llama-cpp
// (installed by that script into a scratch folder; not a dependency of qbrief). Same protocol
// and prompt ids as tools/bench-engine.c: loads MODEL once, then one repetition per line read
// from stdin, one line out per repetition:
//
//     node tools/bench-llamacpp.mjs NPM_DIR MODEL [PROMPTS=128,512] [GEN=64] [THREADS=2]
//     prefill128_ms 512.3 prefill512_ms 2210.7 decode_tok_s 30.12
//
// Prefill: the sequence cleared, the prompt evaluated in one batch without generating.
// Decode: cleared, the first 128 prompt tokens less one evaluated (not timed), then GEN tokens
// generated greedily (temperature 0) starting from the prompt's last token: GEN single-token
// evaluations, timed together.
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const [npmDir, model, promptsArg = "128,512", genArg = "64", threadsArg = "2"] =
    process.argv.slice(2);
if (!npmDir || !model) {
    console.error("usage: bench-llamacpp.mjs NPM_DIR MODEL [PROMPTS] [GEN] [THREADS]");
    process.exit(2);
}
const lens = promptsArg.split(",").map(Number);
const gen = Number(genArg), threads = Number(threadsArg);
const maxLen = Math.max(...lens);
const ids = [];
for (let i = 0; i < maxLen + gen; i++) ids.push(i === 0 ? 1 : ((i * 7919 + 13) % 31000) + 259);

const { getLlama, LlamaLogLevel } = await import(
    pathToFileURL(path.join(npmDir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const m = await llama.loadModel({ modelPath: model, gpuLayers: 0 });
const ctx = await m.createContext({
    contextSize: maxLen + gen + 16, batchSize: maxLen, threads: { ideal: threads, min: threads },
    sequences: 1,
});
const seq = ctx.getSequence();
console.error(`bench-llamacpp: ${model}, llama.cpp (node-llama-cpp), ${threads} threads, ready`);

async function repetition() {
    let out = "";
    for (const n of lens) {
        await seq.clearHistory();
        const t0 = process.hrtime.bigint();
        await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, n));
        out += `prefill${n}_ms ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} `;
    }
    await seq.clearHistory();
    const dp = Math.min(lens[0], 128);
    await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, dp - 1));
    const t0 = process.hrtime.bigint();
    let k = 0;
    for await (const _ of seq.evaluate([ids[dp - 1]], { temperature: 0 })) {
        if (++k >= gen) break;
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(out + `decode_tok_s ${(gen / s).toFixed(2)}`);
}

const rl = readline.createInterface({ input: process.stdin });
for await (const _ of rl) await repetition();
await ctx.dispose();
await m.dispose();
await llama.dispose();
