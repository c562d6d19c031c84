// hf_ref: prints the ids and the decoded text that an independent implementation of HF
// tokenizer.json (Tokenizers.js, npm @huggingface/tokenizers) gives, to cross-check the
// expected ids in tests/collector/tokenizer/test_tokenizer.c. Never run by the tests.
//
//   npm install --prefix /tmp/hfref @huggingface/tokenizers
//   NODE_PATH=/tmp/hfref/node_modules node tests/tools/hf_ref.mjs tokenizer.json "text" ...
//
// The test writes its fixtures to $QB_TOK_DUMP when that is set. Texts are JSON-decoded
// when they start with '"' so that "\n" and "\u00e9" can be given.
import { createRequire } from "module";
import { readFileSync } from "fs";
const require = createRequire(import.meta.url + "/../");
const { Tokenizer } = require(process.env.NODE_PATH + "/@huggingface/tokenizers");
const json = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tok = new Tokenizer(json, {});
for (let text of process.argv.slice(3)) {
    if (text.startsWith('"')) text = JSON.parse(text);
    const ids = tok.encode(text).ids;
    console.log(JSON.stringify(text), JSON.stringify(ids), JSON.stringify(tok.decode(ids, { skip_special_tokens: true })));
}
