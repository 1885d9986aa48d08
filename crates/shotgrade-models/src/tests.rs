//! Shape, structure and weights-file tests of the three networks.

use super::*;
use crate::blocks::CspInner;
use burn::tensor::Distribution;

fn device() -> Device {
    Device::flex()
}

fn random(shape: [usize; 4]) -> Tensor<4> {
    Tensor::random(shape, Distribution::Uniform(0.0, 1.0), &device())
}

#[test]
fn background_net_shapes_and_seed_layers() {
    let config = BackgroundNetConfig::new();
    config.validate().expect("default config is valid");
    let net = config.init(&device());
    let out = net.probabilities(random([2, 3, 128, 128]));
    assert_eq!(out.dims(), [2, 5]);
    let sums = out.sum_dim(1).into_data().try_to_vec::<f32>().expect("f32");
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "{sums:?}");

    // The decision is made on the image and its mirror image: both give the same
    // probabilities, although the network's own logits differ between them.
    let x = random([2, 3, 128, 128]);
    let probs = |t: Tensor<4>| {
        net.probabilities(t)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let (a, b) = (probs(x.clone()), probs(x.clone().flip([3])));
    assert!(
        a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5),
        "{a:?} vs {b:?}"
    );
    let logits = |t: Tensor<4>| net.forward(t).into_data().try_to_vec::<f32>().expect("f32");
    let (la, lb) = (logits(x.clone()), logits(x.flip([3])));
    assert!(
        la.iter().zip(&lb).any(|(p, q)| (p - q).abs() > 1e-6),
        "mirror-symmetric net?"
    );

    background_median_planes_reach_the_head_only(&net);
    background_spread_planes_widen_the_head(&net);
    background_colour_features_join_the_head(&net);

    // Fig. 3: three depthwise 3×3 layers, a 1×1 conv, max- and avg-pool in Bottleneck_3x3.
    let b3 = &net.stage1;
    for dw in [&b3.dw_in, &b3.dw_mid, &b3.dw_edge] {
        let [cout, per_group, kh, kw] = dw.conv.weight.dims();
        assert_eq!((per_group, kh, kw), (1, 3, 3), "depthwise 3×3");
        assert_eq!(dw.conv.groups, cout);
    }
    assert_eq!(b3.pointwise.weight.dims()[2..], [1, 1]);
    assert!(b3.avg_pool.is_some());
    // Fig. 4: depthwise 1×5, 5×1 and 5×5 in Bottleneck_5x5.
    let b5 = &net.stage2;
    assert_eq!(b5.dw_1x5.conv.weight.dims()[1..], [1, 1, 5]);
    assert_eq!(b5.dw_5x1.conv.weight.dims()[1..], [1, 5, 1]);
    assert_eq!(b5.dw_5x5.conv.weight.dims()[1..], [1, 5, 5]);
    assert_eq!(b5.dw_in.conv.weight.dims()[1..], [1, 3, 3]);
    // Concat of both branch kinds plus colours → 4×4 grid → flatten → 5 classes.
    assert_eq!(net.classifier.weight.dims(), [(2 * 64 + 3) * 16, 5]);
    let text = format!("{net}");
    for name in ["Bottleneck3x3", "Bottleneck5x5"] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
}

#[test]
fn position_net_shapes_and_seed_layers() {
    let config = PositionNetConfig::new();
    config.validate().expect("valid");
    let net = config.init(&device());
    let out = net.forward(random([2, 3, 256, 256]));
    let cells = 16 * 16 + 8 * 8;
    assert_eq!(out.category.dims(), [2, cells, 1]);
    assert_eq!(out.boxes.dims(), [2, cells, 4]);
    assert_eq!(out.probability.dims(), [2, cells, 1]);
    assert_eq!(out.packed().dims(), [2, cells, 6]);
    let levels = config.levels();
    assert_eq!(levels.iter().map(|l| l.cells()).sum::<usize>(), cells);

    // Fig. 7: Focus turns 3 channels into 12 before its CBL.
    assert_eq!(net.focus.cbl.conv.weight.dims()[1], 12);
    // Fig. 9/10: CSP1_X downsamples and holds X residual units.
    assert!(net.stage2.body.down.is_some());
    match &net.stage2.body.inner {
        CspInner::Residual(units) => assert_eq!(units.len(), 2),
        CspInner::Plain(_) => panic!("CSP1 must hold residual units"),
    }
    // Fig. 11: CSP2_X holds 2X CBLs instead.
    match &net.stage4.body.inner {
        CspInner::Plain(cbls) => assert_eq!(cbls.len(), 2),
        CspInner::Residual(_) => panic!("CSP2 must hold CBLs"),
    }
    // Fig. 8: SPP with several max-pool sizes.
    let sizes: Vec<usize> = net.spp.pools.iter().map(|p| p.kernel_size[0]).collect();
    assert_eq!(sizes, vec![5, 9, 13]);
    let text = format!("{net}");
    for name in ["Focus", "Cbl", "Csp1", "Csp2", "Spp", "ResUnit"] {
        assert!(text.contains(name), "{name} missing");
    }
}

#[test]
fn experience_net_shapes() {
    let config = ExperienceNetConfig::new();
    config.validate().expect("valid");
    let net = config.init(&device());
    let out = net.forward(random([3, 3, 160, 320]));
    assert_eq!(out.aesthetic.dims(), [3, 1]);
    assert_eq!(out.noise.dims(), [3, 1]);
    for v in out.noise.into_data().try_to_vec::<f32>().expect("f32") {
        assert!(v > 0.0 && v < 1.0);
    }
    // Two separate heads on one flattened trunk (fig. 12).
    assert_eq!(
        net.aesthetic.hidden.weight.dims(),
        net.noise.hidden.weight.dims()
    );
    assert_eq!(net.aesthetic.hidden.weight.dims()[0], 16 * 5 * 10);
}

#[test]
fn invalid_sizes_are_rejected() {
    assert!(
        BackgroundNetConfig::new()
            .with_input_size(100)
            .validate()
            .is_err()
    );
    assert!(
        PositionNetConfig::new()
            .with_input_size(250)
            .validate()
            .is_err()
    );
    assert!(
        ExperienceNetConfig::new()
            .with_input_size(0)
            .validate()
            .is_err()
    );
}

#[test]
fn macs_are_counted_and_small_enough_for_cpu() {
    let models = Models::untrained(ModelConfigs::default(), &device());
    let (b, p, e) = models.input_sizes();
    let macs = [
        models.background.macs(b),
        models.position.macs(p),
        models.experience.macs(e),
    ];
    for m in macs {
        assert!(m > 1_000_000, "{macs:?}");
    }
    // The speed bar (30 images/s on 2 cores with decoding) leaves room for ~0.5 GMAC a photo.
    assert!(macs.iter().sum::<u64>() < 500_000_000, "{macs:?}");
}

fn batch(models: &Models, n: usize) -> Batch {
    let (b, p, e) = models.input_sizes();
    let fill = |len: usize| {
        (0..len)
            .map(|i| ((i * 7919) % 255) as f32 / 255.0)
            .collect::<Vec<f32>>()
    };
    Batch {
        len: n,
        background: fill(n * 3 * b * b),
        backdrop: Vec::new(),
        position: fill(n * 3 * p * p),
        experience: fill(n * 3 * e * 2 * e),
    }
}

#[test]
fn weights_round_trip_gives_identical_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = Models::untrained(ModelConfigs::default(), &device());
    models
        .save_dir(
            dir.path(),
            false,
            &[("shotgrade.note".into(), "test".into())],
        )
        .expect("save");
    let loaded = Models::load_dir(dir.path(), &device()).expect("load");
    assert!(!loaded.provenance.trained);
    assert_eq!(loaded.provenance.sha256.len(), 64);
    let input = batch(&models, 2);
    let (a, b) = (models.infer(&input), loaded.infer(&input));
    assert_eq!(a.len(), 2);
    assert_eq!(a, b);
    // Deterministic inference: the same input twice gives the same output.
    assert_eq!(loaded.infer(&input), b);
}

#[test]
fn bad_weights_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = Models::untrained(ModelConfigs::default(), &device());
    models.save_dir(dir.path(), true, &[]).expect("save");
    let path = |k: NetKind| dir.path().join(k.file_name());

    // Missing file.
    let moved = dir.path().join("moved");
    std::fs::rename(path(NetKind::Experience), &moved).expect("rename");
    let e = Models::load_dir(dir.path(), &device())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("experience.safetensors") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::rename(&moved, path(NetKind::Experience)).expect("rename back");

    // Corrupt file.
    let good = std::fs::read(path(NetKind::Position)).expect("read");
    std::fs::write(path(NetKind::Position), b"garbage").expect("write");
    let e = Models::load_dir(dir.path(), &device())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("position.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );

    // The wrong network's file.
    std::fs::write(
        path(NetKind::Position),
        std::fs::read(path(NetKind::Background)).expect("read"),
    )
    .expect("write");
    let e = Models::load_dir(dir.path(), &device())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("position.safetensors") && e.contains("holds the `background` network"),
        "{e}"
    );
    std::fs::write(path(NetKind::Position), good).expect("restore");

    // Tensors that do not fit the config in the file: a wider network saved under the default
    // config's header.
    let wide = BackgroundNetConfig::new()
        .with_stem_channels(8)
        .init(&device());
    weights::save_net(
        &wide,
        NetKind::Background,
        &BackgroundNetConfig::new().to_string(),
        true,
        &[],
        &path(NetKind::Background),
    )
    .expect("save");
    let e = Models::load_dir(dir.path(), &device())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("background.safetensors") && e.contains("does not match"),
        "{e}"
    );
    assert!(e.contains("stem"), "should name the tensor: {e}");
}

/// With `median_colours` the input has six planes; the trunk sees only the first three, so
/// changing the median planes moves the logits only through the head. A config written before
/// the option existed loads without it.
fn background_median_planes_reach_the_head_only(plain: &BackgroundNet) {
    let config = BackgroundNetConfig::new().with_median_colours(Some(true));
    config.validate().expect("valid");
    assert_eq!(
        (config.input_channels(), config.median_cell()),
        (6, Some(16))
    );
    // The plain network's head is three colour channels narrower.
    planes_from_reach_the_head(&config, 3, plain);

    let loaded = background_config_without("median_colours");
    assert_eq!(loaded, BackgroundNetConfig::new());
    assert!(!loaded.has_median_colours());
}

/// `colour_spread` adds three input planes after the medians, which reach the head only; it
/// needs the median planes, and a config written before the option existed loads without it.
fn background_spread_planes_widen_the_head(plain: &BackgroundNet) {
    let config = BackgroundNetConfig::new()
        .with_input_size(64)
        .with_median_colours(Some(true))
        .with_colour_spread(Some(true));
    config.validate().expect("valid");
    assert_eq!(config.input_channels(), 9);
    planes_from_reach_the_head(&config, 6, plain);

    let err = config
        .clone()
        .with_median_colours(None)
        .validate()
        .expect_err("spread without medians");
    assert!(err.contains("needs median_colours"), "{err}");
    let loaded = background_config_without("colour_spread");
    assert_eq!(loaded, BackgroundNetConfig::new());
    assert!(!loaded.has_colour_spread());
}

/// A network of `config` whose input planes from `first` on are halved gives other logits,
/// and its head is wider than the plain network's by every plane beyond RGB on each of the
/// 16 cells.
fn planes_from_reach_the_head(config: &BackgroundNetConfig, first: usize, plain: &BackgroundNet) {
    let (channels, side) = (config.input_channels(), config.input_size);
    let net = config.init(&device());
    let x = random([2, channels, side, side]);
    let logits = |t: Tensor<4>| net.forward(t).into_data().try_to_vec::<f32>().expect("f32");
    let base = logits(x.clone());
    assert_eq!(base.len(), 10);
    let moved = logits(Tensor::cat(
        vec![
            x.clone().narrow(1, 0, first),
            x.clone().narrow(1, first, channels - first) * 0.5,
        ],
        1,
    ));
    assert!(base.iter().zip(&moved).any(|(a, b)| (a - b).abs() > 1e-6));
    assert_eq!(
        net.classifier.weight.dims()[0],
        plain.classifier.weight.dims()[0] + (channels - 3) * 16
    );
}

/// The default background config as a file written before `field` existed records it: its
/// JSON without that field, loaded back.
fn background_config_without(field: &str) -> BackgroundNetConfig {
    let mut old: serde_json::Value =
        serde_json::from_str(&BackgroundNetConfig::new().to_string()).expect("json");
    old.as_object_mut().expect("object").remove(field);
    BackgroundNetConfig::load_binary(old.to_string().as_bytes()).expect("loads")
}

/// `colour_features` adds a 1×1 conv + BN + ReLU over the colour planes whose outputs widen the
/// head; its tensors round-trip through a weights file, width 0 is refused, and a config
/// written before the option existed loads without it.
fn background_colour_features_join_the_head(plain: &BackgroundNet) {
    let config = BackgroundNetConfig::new()
        .with_input_size(64)
        .with_median_colours(Some(true))
        .with_colour_features(Some(8));
    config.validate().expect("valid");
    let net = config.init(&device());
    let x = random([2, 6, 64, 64]);
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
    let before = values(net.probabilities(x.clone()));
    assert_eq!(before.len(), 10);
    // The head flattens 16 cells of 2 × 64 trunk + 6 colour + 8 feature channels; the plain
    // network's, 16 cells of 2 × 64 + 3.
    let width = |n: &BackgroundNet| n.classifier.weight.dims()[0];
    assert_eq!(width(&net), width(plain) + (3 + 8) * 16);
    let without = config.clone().with_colour_features(None).init(&device());
    assert_eq!(
        net.macs(64) - without.macs(64),
        (6 * 8 * 16 + 8 * 16 * 5) as u64,
        "1×1 conv over 4×4 cells plus the classifier's wider input"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let models = Models {
        background: BackgroundEnsemble::single(net),
        configs: ModelConfigs {
            background: config.clone(),
            ..ModelConfigs::default()
        },
        ..Models::untrained(ModelConfigs::default(), &device())
    };
    models.save_dir(dir.path(), true, &[]).expect("save");
    let file = dir.path().join(NetKind::Background.file_name());
    let (loaded, c) = load_net::<BackgroundNet>(&file, &device()).expect("loads");
    assert_eq!(c, config);
    let after = values(loaded.probabilities(x));
    assert!(before.iter().zip(&after).all(|(p, q)| (p - q).abs() < 1e-5));

    let e = config.with_colour_features(Some(0)).validate().unwrap_err();
    assert!(e.contains("colour_features"), "{e}");
    assert_eq!(
        background_config_without("colour_features"),
        BackgroundNetConfig::new()
    );
}

/// A snapshot ensemble averages its members' probabilities; an ensemble of one is the network
/// itself. Its weights file round-trips with every member, a single network's file loads as an
/// ensemble of one, and an ensemble file refuses to load as one network, saying why.
#[test]
fn background_ensemble_averages_members_and_round_trips() {
    let config = BackgroundNetConfig::new();
    let (a, b) = (config.init(&device()), config.init(&device()));
    let x = random([2, 3, 128, 128]);
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
    let (pa, pb) = (
        values(a.probabilities(x.clone())),
        values(b.probabilities(x.clone())),
    );
    let close = |u: &[f32], v: &[f32]| u.iter().zip(v).all(|(p, q)| (p - q).abs() < 1e-5);

    let one = BackgroundEnsemble::single(a.clone());
    assert!(close(&values(one.probabilities(x.clone())), &pa));
    let pair = BackgroundEnsemble {
        members: vec![a.clone(), b],
        level: None,
        trunk: None,
    };
    let mean: Vec<f32> = pa.iter().zip(&pb).map(|(p, q)| (p + q) / 2.0).collect();
    let pp = values(pair.probabilities(x.clone()));
    assert!(close(&pp, &mean), "{pp:?} vs {mean:?}");
    assert!(!close(&pa, &pb), "two random networks should differ");
    assert_eq!(pair.macs(128), 2 * a.macs(128));

    // Round trip through a weights directory, as `train ensemble` writes it.
    let dir = tempfile::tempdir().expect("tempdir");
    let pair_config = config.clone().with_snapshots(Some(2));
    let models = Models {
        background: pair,
        configs: ModelConfigs {
            background: pair_config.clone(),
            ..ModelConfigs::default()
        },
        ..Models::untrained(ModelConfigs::default(), &device())
    };
    models.save_dir(dir.path(), true, &[]).expect("save");
    let loaded = Models::load_dir(dir.path(), &device()).expect("load");
    assert_eq!(loaded.background.members.len(), 2);
    assert_eq!(loaded.configs.background, pair_config);
    assert!(close(
        &values(loaded.background.probabilities(x.clone())),
        &pp
    ));

    // One network's file (the layout of every file before ensembles) loads as an ensemble of
    // one; the ensemble's file does not load as one network.
    let file = dir.path().join(NetKind::Background.file_name());
    let e = load_net::<BackgroundNet>(&file, &device())
        .unwrap_err()
        .to_string();
    assert!(e.contains("snapshot ensemble of 2"), "{e}");
    let single = Models {
        background: BackgroundEnsemble::single(a),
        ..Models::untrained(ModelConfigs::default(), &device())
    };
    single.save_dir(dir.path(), true, &[]).expect("save");
    let (net, c) = load_net::<BackgroundNet>(&file, &device()).expect("plain layout");
    assert_eq!(c.snapshots, None);
    assert!(close(&values(net.probabilities(x.clone())), &pa));
    let loaded = Models::load_dir(dir.path(), &device()).expect("load");
    assert_eq!(loaded.background.members.len(), 1);
    assert!(close(&values(loaded.background.probabilities(x)), &pa));

    assert!(config.with_snapshots(Some(0)).validate().is_err());
}

/// The second stage moves probability only between `white` and `solid`: their sum and the other
/// classes stay, and statistics of a flat white border and of a flat grey one move it apart
/// once the stage says so. Its file round-trips with the network; without statistics the model
/// is the network alone; the file refuses to load as one network; width 0 is refused.
#[test]
fn backdrop_level_splits_white_and_solid_only() {
    use crate::backdrop_trees::testing::flat;
    use shotgrade_core::BackgroundClass::{Solid, White};
    use shotgrade_image::BACKDROP_FEATURES;
    let config = BackgroundNetConfig::new()
        .with_input_size(64)
        .with_backdrop_level(Some(4));
    config.validate().expect("valid");
    let model = config.init_ensemble(&device());
    assert!(model.level.is_some(), "the config asks for a stage");
    let x = random([2, 3, 64, 64]);
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
    let statistics = |levels: [u8; 2]| {
        let data: Vec<f32> = levels.iter().flat_map(|&v| flat(v)).collect();
        Tensor::<2>::from_data(TensorData::new(data, [2, BACKDROP_FEATURES]), &device())
    };
    let network = values(model.probabilities(x.clone()));
    let split = values(model.classify(x.clone(), Some(statistics([255, 240]))));
    for i in 0..2 {
        let (n, s) = (&network[i * 5..i * 5 + 5], &split[i * 5..i * 5 + 5]);
        let (w, so) = (White.index(), Solid.index());
        assert!((n[w] + n[so] - s[w] - s[so]).abs() < 1e-5, "{n:?} → {s:?}");
        for c in [1, 3, 4] {
            assert!((n[c] - s[c]).abs() < 1e-6, "class {c}: {n:?} → {s:?}");
        }
    }
    assert_eq!(values(model.classify(x.clone(), None)), network);
    assert_eq!(
        model.macs(64) - model.members[0].macs(64),
        (BACKDROP_FEATURES * 4 + 4) as u64
    );

    // A stage whose output weights read "white when the darkest-channel median is high": the
    // white border gets (nearly) all of the light mass, the grey one none.
    let linear = |weight: Vec<f32>, shape: [usize; 2], bias: Vec<f32>| burn::nn::Linear {
        weight: burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, shape),
            &device(),
        )),
        bias: Some(burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [shape[1]]),
            &device(),
        ))),
    };
    let mut hidden = vec![0f32; BACKDROP_FEATURES * 4];
    hidden[3 * 4] = 1.0; // feature 3 (the darkest channel's median) → hidden unit 0
    let model = BackgroundEnsemble {
        level: Some(BackdropLevel {
            hidden: linear(hidden, [BACKDROP_FEATURES, 4], vec![0.0; 4]),
            output: linear(vec![2000.0, 0.0, 0.0, 0.0], [4, 1], vec![-2000.0 * 0.97]),
        }),
        ..model
    };
    let split = values(model.classify(x.clone(), Some(statistics([255, 240]))));
    let light = |i: usize| network[i * 5] + network[i * 5 + 2];
    assert!(
        (split[0] - light(0)).abs() < 1e-4 && split[2] < 1e-4,
        "{split:?}"
    );
    assert!(
        split[5] < 1e-4 && (split[7] - light(1)).abs() < 1e-4,
        "{split:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let models = Models {
        background: model,
        configs: ModelConfigs {
            background: config.clone(),
            ..ModelConfigs::default()
        },
        ..Models::untrained(ModelConfigs::default(), &device())
    };
    models.save_dir(dir.path(), true, &[]).expect("save");
    let loaded = Models::load_dir(dir.path(), &device()).expect("load");
    assert_eq!(loaded.configs.background, config);
    assert!(loaded.configs.input_spec().backdrop);
    let again = values(loaded.background.classify(x, Some(statistics([255, 240]))));
    assert!(again.iter().zip(&split).all(|(p, q)| (p - q).abs() < 1e-5));
    let file = dir.path().join(NetKind::Background.file_name());
    let e = load_net::<BackgroundNet>(&file, &device())
        .unwrap_err()
        .to_string();
    assert!(e.contains("second stage"), "{e}");
    assert!(config.with_backdrop_level(Some(0)).validate().is_err());
    assert_eq!(
        background_config_without("backdrop_level"),
        BackgroundNetConfig::new()
    );
}

/// The pretrained-trunk model: its config asks for the letterboxed view and the statistics,
/// refuses sides off the trunk's stride and second stages, travels through a weights
/// directory with the same outputs, and its head reads the statistics.
#[test]
fn the_pretrained_trunk_model_round_trips_and_reads_the_statistics() {
    use shotgrade_image::{BACKDROP_FEATURES, BackgroundView};
    let config = BackgroundNetConfig::new()
        .with_input_size(64)
        .with_pretrained_trunk(Some(true));
    config.validate().expect("64 is a multiple of 32");
    for bad in [
        config.clone().with_input_size(48),
        config.clone().with_backdrop_trees(Some(3)),
        config.clone().with_snapshots(Some(2)),
    ] {
        assert!(bad.validate().is_err(), "{bad}");
    }
    let configs = ModelConfigs {
        background: config,
        ..ModelConfigs::default()
    };
    let spec = configs.input_spec();
    assert!(spec.backdrop);
    assert_eq!(spec.background_view, BackgroundView::LetterboxWhite);
    let models = Models::untrained(configs.clone(), &device());
    assert!(models.background.members.is_empty());
    let dir = tempfile::tempdir().expect("tempdir");
    models.save_dir(dir.path(), true, &[]).expect("save");
    let loaded = Models::load_dir(dir.path(), &device()).expect("load");
    assert_eq!(loaded.configs.background, configs.background);
    assert!(loaded.background.trunk.is_some());
    // The trunk model is not a from-scratch network: loading it as one is refused.
    let file = dir.path().join(NetKind::Background.file_name());
    assert!(load_net::<BackgroundNet>(&file, &device()).is_err());

    let mut b = batch(&loaded, 2);
    let rows = |v: f32| vec![v; 2 * BACKDROP_FEATURES];
    b.backdrop = rows(0.0);
    let before = models.infer(&b);
    let after = loaded.infer(&b);
    for (x, y) in before.iter().zip(&after) {
        for (p, q) in x
            .background_probabilities
            .iter()
            .zip(&y.background_probabilities)
        {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        assert!((x.background_probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    b.backdrop = rows(3.0);
    let moved = loaded.infer(&b);
    assert_ne!(
        moved[0].background_probabilities,
        after[0].background_probabilities
    );
}

/// A model whose second stage is trees carries them through its weights directory, asks the
/// preprocessor for the statistics, and `infer` splits only the light mass by them.
#[test]
fn backdrop_trees_travel_with_the_model_and_split_in_infer() {
    use crate::backdrop_trees::testing::{flat, flat_trees};
    let configs = ModelConfigs {
        background: BackgroundNetConfig::new().with_backdrop_trees(Some(10)),
        ..ModelConfigs::default()
    };
    assert!(configs.input_spec().backdrop);
    let models = Models {
        backdrop_trees: Some(flat_trees(10)),
        ..Models::untrained(configs.clone(), &device())
    };
    let dir = tempfile::tempdir().expect("tempdir");
    models.save_dir(dir.path(), true, &[]).expect("save");
    let loaded = Models::load_dir(dir.path(), &device()).expect("load");
    assert_eq!(loaded.configs.background, configs.background);
    assert!(loaded.backdrop_trees.is_some());

    let mut b = batch(&loaded, 2);
    b.backdrop = [255u8, 235].iter().flat_map(|&v| flat(v)).collect();
    let split = loaded.infer(&b);
    b.backdrop.clear();
    let network = loaded.infer(&b);
    for i in 0..2 {
        let (n, s) = (
            network[i].background_probabilities,
            split[i].background_probabilities,
        );
        assert!((n[0] + n[2] - s[0] - s[2]).abs() < 1e-5, "{n:?} → {s:?}");
        assert_eq!((n[1], n[3], n[4]), (s[1], s[3], s[4]));
    }
    assert!(split[0].background_probabilities[0] > split[0].background_probabilities[2]);
    assert!(split[1].background_probabilities[0] < split[1].background_probabilities[2]);

    // Trees named by the config but missing from the file: a clear error.
    let bare = Models {
        backdrop_trees: None,
        ..Models::untrained(configs, &device())
    };
    bare.save_dir(dir.path(), true, &[]).expect("save");
    let e = Models::load_dir(dir.path(), &device())
        .unwrap_err()
        .to_string();
    assert!(e.contains(TREES_METADATA_KEY), "{e}");
    let both = BackgroundNetConfig::new()
        .with_backdrop_trees(Some(3))
        .with_backdrop_level(Some(3));
    assert!(both.validate().is_err());
}

/// Progressive resizing: a network's weights run at any valid input size once its head pool
/// is rebuilt, and give exactly what a network built for that size with the same weights gives.
#[test]
fn background_net_runs_at_other_input_sizes() {
    use burn::module::Module;
    let config = BackgroundNetConfig::new().with_median_colours(Some(true));
    let net = config.init(&device());
    for size in [64, 192] {
        let resized_config = config.clone().with_input_size(size);
        resized_config.validate().expect("valid size");
        let built = resized_config
            .init(&device())
            .load_record(net.clone().into_record());
        let resized = net.clone().with_input_size(&resized_config);
        let x = random([2, 6, size, size]);
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
        let (a, b) = (values(resized.forward(x.clone())), values(built.forward(x)));
        assert_eq!(a.len(), 10, "{size} px");
        assert!(
            a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5),
            "{size} px: {a:?} vs {b:?}"
        );
    }
    assert!(config.with_input_size(96).validate().is_err());
}

/// Folding the batch norms changes nothing but float rounding: the shipped (trained, so with
/// real running statistics) position network gives the same raw outputs folded and unfolded.
#[test]
fn folded_position_net_matches_the_unfolded_one() {
    let Some(Ok(models)) = Models::embedded(&device()) else {
        // A build without models/ has nothing trained to fold.
        return;
    };
    let side = models.configs.position.input_size;
    let x = random([2, 3, side, side]);
    let plain = models.position.forward(x.clone()).packed();
    let mut folded = models.position.clone();
    folded.fold_batch_norms();
    let diff = (folded.forward(x).packed() - plain.clone())
        .abs()
        .max()
        .into_scalar::<f32>();
    let scale = plain.abs().max().into_scalar::<f32>();
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "max difference {diff} (outputs up to {scale})"
    );
}

/// The shipped background trunk folded for inference gives the features it gives unfolded,
/// with its ImageNet batch norms (some with running variances of exactly 0).
#[test]
fn folded_background_trunk_matches_the_unfolded_one() {
    let Some(Ok(models)) = Models::embedded(&device()) else {
        return;
    };
    let trunk = models
        .background
        .trunk
        .as_ref()
        .expect("the shipped background model is the pretrained trunk");
    let side = models.configs.background.input_size;
    let x = random([2, 3, side, side]);
    let statistics = Tensor::<2>::random(
        [2, shotgrade_image::BACKDROP_FEATURES],
        Distribution::Uniform(0.0, 1.0),
        &device(),
    );
    let features = trunk.features(x.clone(), statistics.clone());
    let mut folded = trunk.clone();
    folded.fold_batch_norms();
    let diff = (folded.features(x, statistics) - features.clone())
        .abs()
        .max()
        .into_scalar::<f32>();
    let scale = features.abs().max().into_scalar::<f32>();
    assert!(
        diff <= 1e-4 * scale.max(1.0),
        "max difference {diff} (features up to {scale})"
    );
}
