//! config.json parsing: family details, resolution of names and paths, and every bad-input class.

use bottleneck_core::arch::{Activation, AttentionKind, NormKind, PositionKind};
use bottleneck_models::{from_config_json, resolve, ModelError};

fn arch(name: &str) -> bottleneck_core::ModelArch {
    resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn attention_kinds_by_family() {
    assert_eq!(arch("llama-2-7b").attention_kind(), AttentionKind::Mha);
    assert_eq!(arch("llama-3.1-70b").attention_kind(), AttentionKind::Gqa);
    assert_eq!(arch("deepseek-v3").attention_kind(), AttentionKind::Mla);
    assert_eq!(arch("falcon-180b").attention_kind(), AttentionKind::Gqa);
    // Falcon-7B style: multi_query without the new decoder architecture is MQA.
    let f7 = from_config_json(
        "falcon-7b",
        r#"{"model_type":"falcon","hidden_size":4544,"num_attention_heads":71,"num_hidden_layers":32,
            "vocab_size":65024,"multi_query":true,"parallel_attn":true,"new_decoder_architecture":false}"#,
    )
    .unwrap();
    assert_eq!(f7.attention_kind(), AttentionKind::Mqa);
    assert_eq!(f7.norms_per_layer, 1);
    assert!(f7.parallel_attn_mlp);
}

#[test]
fn sliding_windows_by_family() {
    let m = arch("mistral-7b");
    assert_eq!((m.sliding_window, m.local_layers), (Some(4096), 32));
    let g2 = arch("gemma-2-9b");
    assert_eq!((g2.sliding_window, g2.local_layers), (Some(4096), 21));
    assert_eq!(g2.norms_per_layer, 4);
    // Gemma-3: 5 local layers to each global one; 62 layers → 10 global.
    let g3 = arch("gemma-3-27b");
    assert_eq!((g3.sliding_window, g3.local_layers), (Some(1024), 52));
    assert_eq!(g3.vocab, 262_208);
    assert_eq!(g3.extra_norm_params_per_layer, 2 * 128);
    assert!(g3.assumptions.iter().any(|a| a.contains("vision")));
    // Qwen2.5 ships a sliding_window but use_sliding_window is false.
    assert_eq!(arch("qwen2.5-7b").sliding_window, None);
    assert_eq!(arch("llama-3.1-8b").local_layers, 0);
}

#[test]
fn biases_norms_and_positions_by_family() {
    let q = arch("qwen2.5-7b");
    assert!(q.qkv_bias && !q.out_bias);
    let l = arch("llama-3.1-8b");
    assert!(!l.qkv_bias && !l.mlp.bias && !l.tie_embeddings);
    assert!(arch("llama-3.2-1b").tie_embeddings);
    let g = arch("gpt2");
    assert_eq!(g.position, PositionKind::Learned);
    assert_eq!(g.norm, NormKind::LayerNorm);
    assert!(g.qkv_bias && g.out_bias && g.mlp.bias && g.tie_embeddings);
    let j = arch("gpt-j-6b");
    assert!(j.parallel_attn_mlp && j.mlp.bias && !j.qkv_bias);
    assert_eq!(j.norms_per_layer, 1);
    let n = arch("gpt-neox-20b");
    assert!(n.parallel_attn_mlp && !n.tie_embeddings);
    let b = arch("bloom-176b");
    assert_eq!(b.position, PositionKind::Alibi);
    let o = arch("opt-66b");
    assert_eq!(o.max_position, 2048);
    assert_eq!(o.mlp.activation, Activation::Relu);
    let nem = arch("nemotron-4-340b");
    assert!(!nem.mlp.gated);
    assert_eq!(nem.mlp.activation, Activation::ReluSquared);
    assert_eq!(nem.head_dim, 192);
    let gm = arch("gemma-7b");
    assert_eq!(gm.mlp.activation, Activation::GeluTanh);
    assert_eq!(gm.head_dim, 256);
    assert!(gm.tie_embeddings);
}

#[test]
fn moe_layouts() {
    let v3 = arch("deepseek-v3");
    let moe = v3.moe.as_ref().unwrap();
    assert_eq!((moe.experts, moe.top_k, moe.moe_layers), (256, 8, 58));
    assert_eq!(moe.shared.as_ref().unwrap().ffn, 2048);
    assert_eq!(v3.dense_layers(), 3);
    assert!(v3.assumptions.iter().any(|a| a.contains("multi-token")));
    let lite = arch("deepseek-v2-lite");
    assert_eq!(lite.mla.as_ref().unwrap().q_lora_rank, None);
    assert_eq!(
        lite.moe.as_ref().unwrap().shared.as_ref().unwrap().ffn,
        2 * 1408
    );
    let q = arch("qwen1.5-moe-a2.7b");
    let qm = q.moe.as_ref().unwrap();
    assert!(qm.shared_gate);
    assert_eq!(qm.moe_layers, 24);
    let mx = arch("mixtral-8x7b");
    assert_eq!(mx.moe.as_ref().unwrap().moe_layers, 32);
    assert_eq!(mx.dense_layers(), 0);
    let grok = arch("grok-1");
    assert_eq!(grok.moe.as_ref().unwrap().top_k, 2);
    assert_eq!(grok.family, "grok-1");
}

#[test]
fn qwen_moe_sparse_step_and_dense_only_layers() {
    let cfg = r#"{"model_type":"qwen3_moe","hidden_size":64,"num_hidden_layers":8,"num_attention_heads":4,
        "num_key_value_heads":2,"head_dim":16,"intermediate_size":128,"moe_intermediate_size":32,
        "num_experts":8,"num_experts_per_tok":2,"vocab_size":1000,"max_position_embeddings":512,
        "decoder_sparse_step":2,"mlp_only_layers":[1,3]}"#;
    // Layers with (i+1) % 2 == 0 are 1, 3, 5, 7; 1 and 3 are dense-only → 2 MoE layers.
    let a = from_config_json("tiny", cfg).unwrap();
    assert_eq!(a.moe.as_ref().unwrap().moe_layers, 2);
    assert_eq!(a.dense_layers(), 6);
}

#[test]
fn names_resolve_case_and_separator_insensitively() {
    for spec in [
        "Llama-3.1-8B",
        "llama3.1-8b",
        "LLAMA_3.1_8B",
        "meta-llama/Llama-3.1-8B",
        " llama-3.1-8b ",
    ] {
        assert_eq!(resolve(spec).unwrap().name, "llama-3.1-8b", "{spec}");
    }
    assert_eq!(resolve("Mixtral-8x7B-v0.1").unwrap().name, "mixtral-8x7b");
}

#[test]
fn unknown_names_suggest_the_nearest() {
    let e = resolve("llama-3.1-8c").unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ModelError::UnknownModel { .. }));
    assert!(msg.contains("llama-3.1-8b"), "{msg}");
    assert!(msg.contains("bottleneck models"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(resolve("").is_err());
}

#[test]
fn paths_to_files_and_folders_resolve() {
    let dir = std::env::temp_dir().join(format!("bottleneck-models-test-{}", std::process::id()));
    let model_dir = dir.join("my-llama");
    std::fs::create_dir_all(&model_dir).unwrap();
    let text = bottleneck_models::catalog()
        .iter()
        .find(|e| e.name == "llama-2-7b")
        .unwrap()
        .config_json;
    std::fs::write(model_dir.join("config.json"), text).unwrap();
    let from_dir = resolve(model_dir.to_str().unwrap()).unwrap();
    assert_eq!(from_dir.name, "my-llama");
    assert_eq!(from_dir.params(), 6_738_415_616);
    let from_file = resolve(model_dir.join("config.json").to_str().unwrap()).unwrap();
    assert_eq!(from_file.params(), 6_738_415_616);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = resolve(empty.to_str().unwrap()).unwrap_err();
    assert!(matches!(e, ModelError::NoConfig { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- bad input, one class per test ---------------------------------------------------------

#[test]
fn malformed_json_names_line_and_column() {
    let e = from_config_json(
        "bad",
        "{\n  \"hidden_size\": 4096,\n  \"vocab_size\": 32000,,\n}",
    )
    .unwrap_err();
    match &e {
        ModelError::Json { line, column, .. } => assert_eq!((*line, *column), (3, 23)),
        other => panic!("wrong error {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("line 3, column 23"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(matches!(
        from_config_json("bad", "[1, 2]").unwrap_err(),
        ModelError::NotAnObject { .. }
    ));
    assert!(matches!(
        from_config_json("bad", "").unwrap_err(),
        ModelError::Json { .. }
    ));
}

#[test]
fn missing_fields_of_a_known_family_are_all_named() {
    let e = from_config_json(
        "x",
        r#"{"model_type":"llama","hidden_size":4096,"num_attention_heads":32}"#,
    )
    .unwrap_err();
    let msg = e.to_string();
    match &e {
        ModelError::MissingFields { fields, .. } => {
            for f in ["num_hidden_layers", "vocab_size", "intermediate_size"] {
                assert!(fields.iter().any(|x| x == f), "{f} not in {fields:?}");
            }
        }
        other => panic!("wrong error {other:?}"),
    }
    assert!(
        msg.contains("model_type 'llama'") && msg.contains("add them"),
        "{msg}"
    );
    let e = from_config_json("x", r#"{"model_type":"deepseek_v3","hidden_size":7168,"num_hidden_layers":61,"num_attention_heads":128,"vocab_size":129280,"intermediate_size":18432}"#).unwrap_err();
    assert!(e.to_string().contains("kv_lora_rank"), "{e}");
}

#[test]
fn unknown_model_type_without_standard_fields_lists_them() {
    let e = from_config_json("x", r#"{"model_type":"mystery","hidden_size":512}"#).unwrap_err();
    match &e {
        ModelError::UnknownModelType { fields, .. } => assert_eq!(
            fields,
            &[
                "num_hidden_layers",
                "num_attention_heads",
                "intermediate_size",
                "vocab_size"
            ]
        ),
        other => panic!("wrong error {other:?}"),
    }
    assert!(e.to_string().contains("mystery"));
}

#[test]
fn unknown_model_type_with_standard_fields_takes_the_generic_path() {
    let a = from_config_json(
        "x",
        r#"{"model_type":"mystery","hidden_size":512,"num_hidden_layers":4,"num_attention_heads":8,
            "intermediate_size":1024,"vocab_size":1000,"max_position_embeddings":2048}"#,
    )
    .unwrap();
    assert_eq!(a.family, "mystery");
    assert_eq!(a.head_dim, 64);
    assert!(
        a.assumptions.iter().any(|s| s.contains("llama-style")),
        "{:?}",
        a.assumptions
    );
    // No model_type at all: the same path.
    let b = from_config_json(
        "y",
        r#"{"hidden_size":512,"num_hidden_layers":4,"num_attention_heads":8,
            "intermediate_size":1024,"vocab_size":1000}"#,
    )
    .unwrap();
    assert!(b
        .assumptions
        .iter()
        .any(|s| s.contains("max_position_embeddings absent")));
}

#[test]
fn zero_negative_and_non_integer_sizes_are_rejected_by_name() {
    for (value, needle) in [
        ("0", "got 0"),
        ("-4096", "got -4096"),
        ("4096.5", "got 4096.5"),
        ("\"4096\"", "string"),
    ] {
        let text = format!(
            r#"{{"model_type":"llama","hidden_size":{value},"num_hidden_layers":2,"num_attention_heads":2,
                "intermediate_size":8,"vocab_size":10,"max_position_embeddings":16}}"#
        );
        let e = from_config_json("x", &text).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ModelError::BadField { .. }), "{msg}");
        assert!(
            msg.contains("`hidden_size`") && msg.contains(needle),
            "{msg}"
        );
    }
    let e = from_config_json("x", r#"{"model_type":"llama","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":8,"vocab_size":10,"tie_word_embeddings":"yes"}"#).unwrap_err();
    assert!(e.to_string().contains("tie_word_embeddings"), "{e}");
}

#[test]
fn inconsistent_head_counts_are_rejected() {
    // 32 heads over 5 KV heads.
    let e = from_config_json(
        "x",
        r#"{"model_type":"llama","hidden_size":4096,"num_hidden_layers":2,"num_attention_heads":32,
            "num_key_value_heads":5,"intermediate_size":8,"vocab_size":10}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("num_key_value_heads"), "{e}");
    // Heads not dividing the width, no head_dim.
    let e = from_config_json(
        "x",
        r#"{"model_type":"llama","hidden_size":100,"num_hidden_layers":2,"num_attention_heads":3,
            "intermediate_size":8,"vocab_size":10}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("head_dim"), "{e}");
    // More experts per token than experts.
    let e = from_config_json(
        "x",
        r#"{"model_type":"mixtral","hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
            "intermediate_size":8,"vocab_size":10,"num_local_experts":2,"num_experts_per_tok":3}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("experts per token"), "{e}");
}

#[test]
fn parsed_arch_snapshot() {
    insta::assert_json_snapshot!("deepseek_v2_lite", arch("deepseek-v2-lite"));
}

#[test]
fn a_missing_path_says_so() {
    let e = resolve("./no/such/config.json").unwrap_err();
    assert!(matches!(e, ModelError::Io { .. }), "{e}");
    assert!(e.to_string().contains("no such file"), "{e}");
}

#[test]
fn absurd_sizes_are_rejected_not_overflowed() {
    // Each field is legal on its own; their product is not a model.
    let e = from_config_json(
        "x",
        r#"{"model_type":"llama","hidden_size":1048576,"num_hidden_layers":100000,"num_attention_heads":8,
            "intermediate_size":1048576,"vocab_size":10}"#,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::Implausible { .. }), "{e}");
    let e = from_config_json(
        "x",
        r#"{"model_type":"llama","hidden_size":18446744073709551615,"num_hidden_layers":1,"num_attention_heads":1,
            "intermediate_size":1,"vocab_size":1}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("implausibly large"), "{e}");
    // The largest real models stay far below the bound.
    assert!(resolve("deepseek-v3").is_ok() && resolve("llama-3.1-405b").is_ok());
}
