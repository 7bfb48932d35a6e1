#!/usr/bin/env bash
# Writes the seed corpus of fuzz_request.c into corpus/ (one request body per file, named
# by content hash). Run again after adding cases; the fuzzer's own finds are merged there
# by fuzz.sh.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus
add() { local h; h=$(printf '%s' "$1" | sha1sum | cut -c1-16); printf '%s' "$1" >"corpus/seed_$h"; }
while IFS= read -r line; do add "$line"; done <<'CASES'
{}
{"n": 2, "seed": 7, "steps": 4}
{"model": "cond", "class_label": 3, "n": 4, "steps": 40}
{"model": "cond", "class_labels": [0, null, -1, 9], "seed": 1}
{"model": "m3", "class_labels": [999], "steps": 2}
{"seeds": [1, 2, 3], "steps": 18, "sigma_min": 0.002, "sigma_max": 80, "rho": 7}
{"S_churn": 40, "S_min": 0.05, "S_max": 50, "S_noise": 1.003}
{"S_max": "inf", "S_min": 0}
{"solver": "euler", "disc": "vp", "schedule": "vp", "scaling": "vp"}
{"solver": "heun", "disc": "ve", "schedule": "ve", "scaling": "none"}
{"alpha": 0.5, "steps": 3}
{"disc": "iddpm", "sigma_min": 0.002, "sigma_max": 81}
{"timeout_ms": 1}
{"model": "cond", "prompt": "dog", "n": 2, "size": "32x32", "response_format": "url", "output_format": "png", "quality": "hd", "style": "vivid", "user": "u"}
{"model": "cond", "prompt": " Zero ", "class_labels": [0, null]}
{"prompt": "", "size": "auto", "response_format": "b64_json"}
{"model": "uncond", "model_sha256": "00FF", "seed": 3, "class_label": null, "steps": 4, "sigma_min": 0.002, "sigma_max": 80, "rho": 7, "S_churn": 0, "S_min": 0, "S_max": "inf", "S_noise": 1, "nfe": 7, "edm_serve_version": "0.1.0"}
{"timeout_ms": 3600000}
{"model": null, "n": null, "seed": null, "seeds": null, "class_label": null, "class_labels": null, "steps": null, "sigma_min": null, "sigma_max": null, "rho": null, "S_churn": null, "S_min": null, "S_max": null, "S_noise": null, "solver": null, "disc": null, "schedule": null, "scaling": null, "timeout_ms": null}
{"n": 16, "seed": 18446744073709551600}
{"seed": 9223372036854775807, "n": 16}
{"seed": 9223372036854775807}
{"seeds": [9223372036854775807, 0]}
{"n": 0}
{"n": 17}
{"n": -1}
{"n": 1e3}
{"steps": 1}
{"steps": 1001}
{"steps": 18.0}
{"steps": "18"}
{"steps": true}
{"steps": [18]}
{"sigma_min": 0}
{"sigma_min": -1e-300}
{"sigma_min": 1e-320}
{"sigma_max": 1e308, "sigma_min": 1e-308}
{"rho": 1e999}
{"rho": -0.0}
{"S_min": 5, "S_max": 1}
{"S_max": "-inf"}
{"S_max": "INF"}
{"solver": "Heun"}
{"solver": ""}
{"solver": "euler\u0000"}
{"disc": {"x": 1}}
{"model": "zzz"}
{"model": "uncond\u0000"}
{"model": ""}
{"model": 1}
{"class_label": 1}
{"class_label": -1}
{"model": "cond", "class_label": 10}
{"model": "cond", "class_label": -2}
{"model": "cond", "class_labels": []}
{"model": "cond", "class_labels": [1, 2], "n": 3}
{"model": "cond", "class_label": 1, "class_labels": [1]}
{"seed": 1, "seeds": [1]}
{"seeds": []}
{"seeds": [1, -1]}
{"seeds": "1-5"}
{"n": 1, "n": 2}
{"\u0073teps": 4}
{"steps\u0000": 4}
{"x": 1}
{"": 1}
[]
[{}]
"steps"
null
true
42
{
{"steps": 4
{"steps": 4}}
{"steps": 4} {}
{'steps': 4}
{"steps": 0x10}
{"steps": 04}
{"steps": NaN}
{"steps": Infinity}
{"model": "\ud800"}
{"model": "\udc00\ud800"}
{"model": "caf\u00e9"}
{"init_image": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYkQmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII=", "seed": 1, "steps": 4}
{"init_image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYkQmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII=", "mask": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAFElEQVR42mP4//8/AxpGAQwjQwEARQbfIdZNzbgAAAAASUVORK5CYII=", "resample_jump": 1, "resample_count": 2}
{"model": "cond", "init_image": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAFElEQVR42mP4//8/AxpGAQwjQwEARQbfIdZNzbgAAAAASUVORK5CYII=", "mask": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYkQmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII=", "strength": 0.3}
{"init_image": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYkQmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII=", "sigma_start": 2, "init_image_sha256": "9030f56aebf69ada868e019f4a3a6124d3e804f729ad6b55559092e136f9af89"}
{"init_image": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYkQmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII=", "init_image_sha256": "00", "mask_sha256": "11"}
{"init_image": "iVBORw0KGgoAAAANSUhEUgAAB9AAAAAICAAAAACEmTtpAAAAAElFTkSuQmCC"}
{"init_image": "aGVsbG8="}
{"init_image": "data:image/jpeg;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYkQmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII="}
{"mask": "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAFElEQVR42mP4//8/AxpGAQwjQwEARQbfIdZNzbgAAAAASUVORK5CYII="}
{"strength": 0.5}
{"variation_seed": 3, "variation_strength": 0.5, "seed": 1}
{"variation_strength": 1}
CASES
printf '' >corpus/seed_empty
printf '\xef\xbb\xbf{}' >corpus/seed_bom
printf '{"model": "\xff\xfe"}' >corpus/seed_bad_utf8
printf '{"steps": 4}\x00' >corpus/seed_trailing_nul
printf '{\x00"steps": 4}' >corpus/seed_inner_nul
python3 -c 'import sys; sys.stdout.write("[" * 5000 + "]" * 5000)' >corpus/seed_deep_array
python3 -c 'import sys; sys.stdout.write("{\"a\":" * 3000 + "1" + "}" * 3000)' >corpus/seed_deep_object
python3 -c 'import sys; sys.stdout.write("{\"seeds\": [" + ",".join(str(i) for i in range(20000)) + "]}")' >corpus/seed_long_seeds
python3 -c 'import sys; sys.stdout.write("{\"model\": \"" + "m" * 100000 + "\"}")' >corpus/seed_long_string
echo "corpus: $(ls corpus | wc -l) files"
