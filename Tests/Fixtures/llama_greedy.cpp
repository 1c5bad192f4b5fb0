// llama.cpp's side of Tests/Fixtures/smollm2_reference.json: greedy decoding with fp32 KV cache.
//
//   llama_greedy MODEL.gguf PROMPT_FILE [N]
//
// Tokenizes the prompt file's text (no BOS added, special tokens parsed), prefills it, then takes
// N (default 48) greedy steps: the argmax of the raw logits, lowest id on ties, no stop at EOS.
// Prints one JSON line: prompt_ids, greedy ids, the first position's top 5 (id, logit) and each
// step's (token, logit, margin to the runner-up). Built by scripts/build-peers.sh against the
// llama.cpp it builds; Tests/Fixtures/smollm2_reference.py --llama-greedy runs it.
#include "llama.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

static void set_tokens(llama_batch_ext * batch, const llama_token * tokens, int32_t n, llama_pos first) {
    llama_batch_ext_clear(batch);
    for (int32_t i = 0; i < n; ++i) {
        const int32_t idx = llama_batch_ext_add_token(batch, 0, tokens[i]);
        const llama_pos pos = first + i;
        llama_batch_ext_set_pos(batch, idx, &pos);
    }
    llama_batch_ext_set_output_logits(batch, n - 1, true);
}

int main(int argc, char ** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT_FILE [N]\n", argv[0]);
        return 2;
    }
    const int steps = argc > 3 ? std::stoi(argv[3]) : 48;
    std::ifstream file(argv[2], std::ios::binary);
    if (!file) { fprintf(stderr, "cannot read %s\n", argv[2]); return 1; }
    std::stringstream text;
    text << file.rdbuf();
    const std::string prompt = text.str();

    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_prompt = -llama_tokenize(vocab, prompt.c_str(), prompt.size(), nullptr, 0, false, true);
    std::vector<llama_token> ids(n_prompt);
    if (llama_tokenize(vocab, prompt.c_str(), prompt.size(), ids.data(), ids.size(), false, true) < 0) {
        fprintf(stderr, "cannot tokenize the prompt\n");
        return 1;
    }
    llama_context_params params = llama_context_default_params();
    params.n_ctx = n_prompt + steps + 1;
    params.n_batch = n_prompt;
    params.type_k = GGML_TYPE_F32;
    params.type_v = GGML_TYPE_F32;
    params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;   // the reference: plain fp32 attention
    params.n_threads = params.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, params);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    const int vocab_size = llama_vocab_n_tokens(vocab);

    llama_batch_ext * batch = llama_batch_ext_init(ctx);
    set_tokens(batch, ids.data(), n_prompt, 0);
    std::vector<llama_token> greedy;
    std::string top5, trace;
    llama_pos pos = n_prompt;
    for (int step = 0; step < steps; ++step) {
        if (llama_process(ctx, LLAMA_PROCESS_TYPE_DECODE, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
        const float * logits = llama_get_logits_ith(ctx, -1);
        std::vector<int> order(vocab_size);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int a, int b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
        if (step == 0) {
            for (int k = 0; k < 5; ++k) {
                char cell[64];
                snprintf(cell, sizeof cell, "%s[%d, %.7g]", k ? ", " : "", order[k], logits[order[k]]);
                top5 += cell;
            }
        }
        const llama_token next = order[0];
        char cell[96];
        snprintf(cell, sizeof cell, "%s[%d, %.7g, %.7g]", step ? ", " : "", next, logits[next], logits[next] - logits[order[1]]);
        trace += cell;
        greedy.push_back(next);
        set_tokens(batch, &next, 1, pos++);
    }
    auto list = [](const std::vector<llama_token> & v) {
        std::string s;
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
        return s;
    };
    printf("{\"prompt_ids\": [%s], \"greedy\": [%s], \"first_position_top5\": [%s], \"steps\": [%s]}\n",
           list(ids).c_str(), list(greedy).c_str(), top5.c_str(), trace.c_str());
    llama_batch_ext_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
