//! wgrad's differential table: one row per op and shape set, run by `wgrad check` and the test
//! suite through the library's harness ([`wgrad::check`]): a finite-difference gradcheck on the
//! CPU reference, the GPU forward against the CPU, and the GPU backward against the CPU.

use wgrad::check::{Case, Input};
use wgrad::nn::Activation;
use wgrad::optim::{Adam, Optimizer, Rprop, Sgd};
use wgrad::{Conv, Grads, Tensor, Variant};

// Short names for the input kinds, so each row fits on a line.
fn x(shape: &[usize]) -> Input {
    Input::normal(shape)
}
fn away(shape: &[usize], kinks: &'static [f64]) -> Input {
    Input::away(shape, kinks)
}
fn pos(shape: &[usize]) -> Input {
    Input::positive(shape)
}
fn ints(shape: &[usize], n: usize) -> Input {
    Input::integers(shape, n)
}
fn mask(shape: &[usize]) -> Input {
    Input::mask(shape)
}
fn fixed(input: Input) -> Input {
    input.fixed()
}

/// Elements in a tensor that needs more than 65,535 workgroups of 256 in one dimension.
pub const BIG: usize = 65_536 * 256 + 1;

/// Every row of the table, seeded by position.
pub fn cases() -> Vec<Case> {
    let mut t: Vec<Case> = Vec::new();
    let sizes: [&[usize]; 6] = [&[], &[1], &[63], &[64], &[65], &[3, 5]];

    // Unary functions: every size, plus a grid beyond 65,535 workgroups for one of them.
    type U = fn(&Tensor) -> Tensor;
    type In = fn(&[usize]) -> Input;
    let unary: [(&str, U, In); 22] = [
        ("neg", |a| a.neg(), x),
        ("exp", |a| a.exp(), x),
        ("log", |a| a.log(), pos),
        ("sqrt", |a| a.sqrt(), pos),
        ("abs", |a| a.abs(), |s| away(s, &[0.0])),
        ("relu", |a| a.relu(), |s| away(s, &[0.0])),
        ("leaky_relu", |a| a.leaky_relu(0.1), |s| away(s, &[0.0])),
        ("sigmoid", |a| a.sigmoid(), x),
        ("tanh", |a| a.tanh(), x),
        ("gelu", |a| a.gelu(), x),
        ("gelu_tanh", |a| a.gelu_tanh(), x),
        ("softplus", |a| a.softplus(), x),
        ("elu", |a| a.elu(1.0), |s| away(s, &[0.0])),
        ("affine", |a| a.affine(-1.5, 0.25), x),
        ("square", |a| a.square(), x),
        ("powf", |a| a.powf(3.0), x),
        ("recip", |a| a.recip(), pos),
        ("clamp", |a| a.clamp(-0.5, 0.5), |s| away(s, &[-0.5, 0.5])),
        ("sin", |a| a.sin(), x),
        ("cos", |a| a.cos(), x),
        ("copy", |a| a.copy(), x),
        ("sign", |a| a.sign(), |s| away(s, &[0.0])),
    ];
    for (op, f, input) in unary {
        for s in sizes {
            t.push(Case::new(op, vec![input(s)], move |_, v| f(&v[0])));
        }
    }
    t.push(Case::new("relu", vec![away(&[BIG], &[0.0])], |_, v| v[0].relu()).forward_only());

    // Binary functions with broadcasting.
    type B = fn(&Tensor, &Tensor) -> Tensor;
    let binary: [(&str, B, In, In); 8] = [
        ("add", |a, b| a.add(b), x, x),
        ("sub", |a, b| a.sub(b), x, x),
        ("mul", |a, b| a.mul(b), x, x),
        ("div", |a, b| a.div(b), x, pos),
        ("pow", |a, b| a.pow(b), pos, x),
        ("maximum", |a, b| a.maximum(b), x, x),
        ("minimum", |a, b| a.minimum(b), x, x),
        (
            "bce_logits",
            |a, b| a.bce_logits_elementwise(b),
            x,
            |s| fixed(pos(s)),
        ),
    ];
    let pairs: [(&[usize], &[usize]); 7] = [
        (&[], &[]),
        (&[65], &[65]),
        (&[4, 5], &[5]),
        (&[4, 1], &[1, 5]),
        (&[2, 3, 4], &[3, 1]),
        (&[3], &[2, 3]),
        (&[2, 1, 3, 1], &[4, 1, 2]),
    ];
    for (op, f, ia, ib) in binary {
        for (sa, sb) in pairs {
            t.push(Case::new(op, vec![ia(sa), ib(sb)], move |_, v| {
                f(&v[0], &v[1])
            }));
        }
    }
    t.push(Case::new("add", vec![x(&[BIG]), x(&[1])], |_, v| v[0].add(&v[1])).forward_only());
    type C = fn(&Tensor, &Tensor) -> Tensor;
    let compare: [(&str, C); 6] = [
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
        ("eq", |a, b| a.eq(b)),
        ("ne", |a, b| a.ne(b)),
    ];
    for (op, f) in compare {
        // Small integers, so equal pairs occur.
        let ins = vec![fixed(ints(&[4, 6], 3)), fixed(ints(&[6], 3))];
        t.push(Case::new(op, ins, move |_, v| f(&v[0], &v[1])));
    }
    for (sc, sa, sb) in [
        (&[5][..], &[5][..], &[5][..]),
        (&[3, 4], &[4], &[3, 1]),
        (&[2, 3], &[], &[2, 3]),
    ] {
        let ins = vec![mask(sc), x(sa), x(sb)];
        t.push(Case::new("where", ins, |_, v| {
            v[0].where_cond(&v[1], &v[2])
        }));
    }
    t.push(Case::new("full", vec![], |d, _| {
        Tensor::full(d, &[7, 9], 2.5)
    }));

    // Matrix products through every kernel: tile edges (1, 7, 8, 63, 64, 65), both transposes,
    // batches, broadcast batches, and matrices under 8 rows (computed transposed).
    let mm: [(&[usize], &[usize], bool, bool); 15] = [
        (&[1, 1], &[1, 1], false, false),
        (&[3, 4], &[4, 5], false, false),
        (&[63, 64], &[64, 65], false, false),
        (&[65, 17], &[17, 63], false, false),
        (&[4, 7], &[4, 5], true, false),
        (&[3, 4], &[5, 4], false, true),
        (&[7, 3], &[5, 7], true, true),
        (&[2, 3, 4], &[2, 4, 5], false, false),
        (&[2, 3, 4], &[4, 5], false, false),
        (&[4, 3], &[2, 4, 5], true, false),
        (&[2, 5, 3], &[2, 6, 5], true, true),
        (&[3, 20], &[20, 70], false, false),
        (&[9, 8], &[8, 129], false, false),
        // Whole 128×128 tiles with a partial last slab of k, plain and transposed.
        (&[130, 20], &[20, 131], false, false),
        (&[20, 130], &[131, 20], true, true),
    ];
    let variants = [
        ("matmul", Variant::Auto),
        ("matmul_naive", Variant::Naive),
        ("matmul_tiled", Variant::Tiled),
        ("matmul_subgroup", Variant::Subgroup),
        ("matmul_shared", Variant::Shared),
    ];
    for (sa, sb, ta, tb) in mm {
        for (op, variant) in variants {
            let ins = vec![x(sa), x(sb)];
            t.push(Case::new(op, ins, move |_, v| {
                v[0].matmul_variant(&v[1], ta, tb, variant)
            }));
        }
    }
    for (op, variant) in variants {
        let ins = vec![x(&[130, 257]), x(&[257, 70])];
        t.push(
            Case::new(op, ins, move |_, v| {
                v[0].matmul_variant(&v[1], false, false, variant)
            })
            .tol(1e-4, 1e-5),
        );
    }
    t.push(Case::new("matmul", vec![x(&[9, 6]), x(&[5, 6])], |_, v| {
        v[0].matmul(&v[1].t())
    }));
    t.push(
        Case::new(
            "matmul",
            vec![x(&[65_537, 2, 3]), x(&[65_537, 3, 2])],
            |_, v| v[0].matmul(&v[1]),
        )
        .forward_only(),
    );

    // A dense layer in one dispatch: act(x·Wᵀ + b) through every kernel and fused activation.
    let acts = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Elu(1.0),
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Softplus,
    ];
    for act in acts {
        for (op, variant) in variants {
            let op = linear_name(op);
            // Inputs away from 0 keep the kinks of relu-like activations out of finite differences.
            let ins = vec![away(&[5, 6], &[0.0]), x(&[7, 6]), x(&[7])];
            t.push(
                Case::new(op, ins, move |_, v| {
                    v[0].linear_variant(&v[1], Some(&v[2]), act, variant)
                })
                .tol(2e-5, 1e-5),
            );
        }
    }
    // With no gradient to carry, every activation is fused into the product's epilogue, those
    // whose backward needs their input (gelu, gelu_tanh, softplus) too.
    for act in acts {
        for (op, variant) in variants {
            let op = linear_name(op);
            let ins = vec![fixed(x(&[9, 6])), fixed(x(&[70, 6])), fixed(x(&[70]))];
            t.push(
                Case::new(op, ins, move |_, v| {
                    v[0].linear_variant(&v[1], Some(&v[2]), act, variant)
                })
                .tol(2e-5, 1e-5),
            );
        }
    }
    t.push(Case::new(
        "linear",
        vec![x(&[2, 3, 9]), x(&[4, 9])],
        |_, v| v[0].linear(&v[1], None, Activation::Tanh),
    ));
    t.push(Case::new(
        "linear",
        vec![x(&[70, 33]), x(&[66, 33]), x(&[66])],
        |_, v| v[0].linear(&v[1], Some(&v[2]), Activation::Sigmoid),
    ));

    // Reductions: axes, keepdim, long axes (two passes), empty results are tested apart.
    type R = fn(&Tensor, isize, bool) -> Tensor;
    let reduce: [(&str, R); 5] = [
        (
            "sum",
            |a, ax, k| if k { a.sum_keepdim(ax) } else { a.sum(ax) },
        ),
        (
            "mean",
            |a, ax, k| if k { a.mean_keepdim(ax) } else { a.mean(ax) },
        ),
        (
            "max",
            |a, ax, k| if k { a.max_keepdim(ax) } else { a.max(ax) },
        ),
        (
            "min",
            |a, ax, k| if k { a.min_keepdim(ax) } else { a.min(ax) },
        ),
        (
            "var",
            |a, ax, k| if k { a.var_keepdim(ax) } else { a.var(ax) },
        ),
    ];
    let axes: [(&[usize], isize, bool); 5] = [
        (&[1], 0, false),
        (&[7], 0, true),
        (&[4, 5], 1, false),
        (&[3, 4, 5], 1, true),
        (&[3, 4, 5], -3, false),
    ];
    for (op, f) in reduce {
        for (s, ax, k) in axes {
            t.push(Case::new(op, vec![x(s)], move |_, v| f(&v[0], ax, k)));
        }
        t.push(Case::new(op, vec![x(&[3, 5000])], move |_, v| f(&v[0], 1, false)).tol(1e-4, 1e-4));
    }
    t.push(Case::new("sum", vec![x(&[1_000_003])], |_, v| v[0].sum(0)).tol(1e-2, 1e-5));
    t.push(Case::new("sum", vec![x(&[BIG, 1])], |_, v| v[0].sum(1)).forward_only());
    t.push(Case::new("sum_all", vec![x(&[4, 5])], |_, v| {
        v[0].sum_all()
    }));
    t.push(Case::new("mean_all", vec![x(&[4, 5])], |_, v| {
        v[0].mean_all()
    }));
    t.push(Case::new("max_all", vec![x(&[4, 5])], |_, v| {
        v[0].max_all()
    }));
    t.push(Case::new("argmax", vec![fixed(x(&[6, 9]))], |_, v| {
        v[0].argmax(1)
    }));
    t.push(Case::new("argmax", vec![fixed(x(&[4, 3, 2]))], |_, v| {
        v[0].argmax_keepdim(0)
    }));

    // Shape ops.
    t.push(Case::new("reshape", vec![x(&[2, 6])], |_, v| {
        v[0].reshape(&[3, 4]).square()
    }));
    t.push(Case::new("detach", vec![fixed(x(&[5]))], |_, v| {
        v[0].detach()
    }));
    t.push(Case::new("permute", vec![x(&[2, 3, 4])], |_, v| {
        v[0].permute(&[2, 0, 1])
    }));
    t.push(Case::new("transpose", vec![x(&[5, 7])], |_, v| v[0].t()));
    t.push(Case::new("transpose", vec![x(&[300, 301])], |_, v| {
        v[0].t()
    }));
    t.push(Case::new("broadcast_to", vec![x(&[3, 1])], |_, v| {
        v[0].broadcast_to(&[2, 3, 4])
    }));
    t.push(Case::new("narrow", vec![x(&[4, 6])], |_, v| {
        v[0].narrow(1, 2, 3)
    }));
    t.push(Case::new("narrow", vec![x(&[5, 2, 3])], |_, v| {
        v[0].narrow(0, 1, 3)
    }));
    // Views copied out by the strided-copy kernel, and views read in place by the ops that
    // take strides (elementwise, where, matrix products).
    t.push(Case::new("contiguous", vec![x(&[2, 3, 4])], |_, v| {
        v[0].permute(&[2, 0, 1]).contiguous()
    }));
    t.push(Case::new("contiguous", vec![x(&[5, 2, 3])], |_, v| {
        v[0].narrow(0, 1, 3).t().contiguous()
    }));
    t.push(Case::new("contiguous", vec![x(&[3, 1])], |_, v| {
        v[0].broadcast_to(&[2, 3, 4]).contiguous()
    }));
    // Rows of 16 or more are copied a row per invocation.
    t.push(Case::new("contiguous", vec![x(&[4, 40, 3])], |_, v| {
        v[0].permute(&[0, 2, 1]).contiguous()
    }));
    t.push(Case::new("contiguous", vec![x(&[70, 5])], |_, v| {
        v[0].narrow(0, 3, 60).t().contiguous()
    }));
    t.push(Case::new("add", vec![x(&[4, 6]), x(&[3, 4])], |_, v| {
        v[0].narrow(1, 2, 3).t() + &v[1]
    }));
    t.push(Case::new("mul", vec![x(&[3, 4, 5]), x(&[4])], |_, v| {
        v[0].permute(&[2, 0, 1]) * v[1].broadcast_to(&[3, 4])
    }));
    t.push(Case::new(
        "where",
        vec![mask(&[5, 3]), x(&[3, 5]), x(&[6, 3])],
        |_, v| v[0].where_cond(&v[1].t(), &v[2].narrow(0, 1, 5)),
    ));
    t.push(Case::new(
        "matmul",
        vec![x(&[6, 9]), x(&[2, 7, 5])],
        |_, v| {
            v[0].narrow(0, 1, 5)
                .t()
                .matmul(&v[1].narrow(0, 1, 1).narrow(1, 2, 5))
        },
    ));
    t.push(Case::new(
        "matmul",
        vec![x(&[4, 3, 2]), x(&[3, 5])],
        |_, v| v[0].permute(&[0, 2, 1]).matmul(&v[1]),
    ));
    t.push(Case::new("pad", vec![x(&[3, 2])], |_, v| v[0].pad(0, 1, 2)));
    t.push(Case::new("concat", vec![x(&[2, 3]), x(&[2, 4])], |_, v| {
        Tensor::concat(&[&v[0], &v[1]], 1)
    }));
    t.push(Case::new(
        "concat",
        vec![x(&[1, 3]), x(&[2, 3]), x(&[3, 3])],
        |_, v| Tensor::concat(&[&v[0], &v[1], &v[2]], 0),
    ));
    t.push(Case::new(
        "gather_rows",
        vec![x(&[5, 3]), ints(&[7], 5)],
        |_, v| v[0].gather_rows(&v[1]),
    ));
    t.push(Case::new("one_hot", vec![ints(&[9], 4)], |_, v| {
        v[0].one_hot(4)
    }));

    // Softmax family and losses.
    for s in [&[1, 1][..], &[4, 10], &[3, 65], &[2, 3, 5]] {
        t.push(Case::new("softmax", vec![x(s)], |_, v| v[0].softmax()));
        t.push(Case::new("log_softmax", vec![x(s)], |_, v| {
            v[0].log_softmax()
        }));
    }
    t.push(Case::new("softmax", vec![x(&[65_537 * 64, 2])], |_, v| v[0].softmax()).forward_only());
    t.push(Case::new(
        "cross_entropy",
        vec![x(&[6, 10]), ints(&[6], 10)],
        |_, v| v[0].cross_entropy(&v[1]),
    ));
    t.push(Case::new(
        "cross_entropy",
        vec![x(&[1, 3]), ints(&[1], 3)],
        |_, v| v[0].cross_entropy(&v[1]),
    ));
    t.push(Case::new("mse", vec![x(&[4, 6]), x(&[4, 6])], |_, v| {
        v[0].mse(&v[1])
    }));
    t.push(Case::new(
        "bce_with_logits",
        vec![x(&[8]), fixed(pos(&[8]))],
        |_, v| v[0].bce_with_logits(&v[1].affine(0.5, -0.2)),
    ));

    // Convolutions (every geometry argument, groups, 1×1 and whole-image kernels, stride past
    // the kernel, one-sided padding through `pad`, tiles past 32 rows and columns), their
    // transpose, pooling and normalisation.
    type Cv = fn() -> Conv;
    let convs: [(&[usize], &[usize], Cv); 10] = [
        (&[2, 3, 5, 6], &[4, 3, 3, 3], Conv::default),
        (&[2, 3, 7, 7], &[5, 3, 3, 3], || {
            Conv::default().stride(2).padding(1)
        }),
        (&[1, 2, 7, 8], &[3, 2, 3, 2], || Conv {
            stride: [1, 2],
            padding: [2, 1],
            dilation: [2, 1],
            ..Conv::default()
        }),
        (&[2, 4, 5, 5], &[6, 2, 3, 3], || {
            Conv::default().padding(1).groups(2)
        }),
        (&[1, 3, 5, 5], &[3, 1, 3, 3], || Conv::default().groups(3)),
        (&[2, 5, 3, 3], &[7, 5, 1, 1], Conv::default),
        (&[2, 2, 4, 4], &[3, 2, 4, 4], Conv::default),
        (&[1, 2, 7, 7], &[2, 2, 2, 2], || Conv::default().stride(3)),
        (&[2, 3, 9, 9], &[40, 3, 3, 3], || Conv::default().padding(1)),
        (&[1, 1, 1, 1], &[2, 1, 1, 1], Conv::default),
    ];
    for (xs, ws, conv) in convs {
        for (op, implicit) in [("conv2d", false), ("conv2d_implicit", true)] {
            let bias = x(&ws[..1]);
            t.push(Case::new(op, vec![x(xs), x(ws), bias], move |_, v| {
                v[0].conv2d_variant(&v[1], Some(&v[2]), conv(), implicit)
            }));
        }
    }
    t.push(Case::new(
        "conv2d",
        vec![x(&[1, 2, 4, 4]), x(&[3, 2, 2, 3])],
        |_, v| {
            v[0].pad(2, 1, 0)
                .pad(3, 0, 2)
                .conv2d(&v[1], None, Conv::default())
        },
    ));
    let transposes: [(&[usize], &[usize], Cv); 3] = [
        (&[2, 3, 4, 4], &[3, 2, 3, 3], || {
            Conv::default().stride(2).padding(1).output_padding(1)
        }),
        (&[1, 4, 3, 3], &[4, 3, 3, 3], || Conv::default().groups(2)),
        (&[1, 2, 3, 3], &[2, 2, 2, 2], || {
            Conv::default().dilation(2).stride(2)
        }),
    ];
    for (xs, ws, conv) in transposes {
        for (op, implicit) in [
            ("conv_transpose2d", false),
            ("conv_transpose2d_implicit", true),
        ] {
            let bias = x(&[ws[1] * conv().groups]);
            t.push(Case::new(op, vec![x(xs), x(ws), bias], move |_, v| {
                v[0].conv_transpose2d_variant(&v[1], Some(&v[2]), conv(), implicit)
            }));
        }
    }
    for (xs, k, s, p) in [
        (&[2, 3, 6, 6][..], 2, 2, 0),
        (&[1, 2, 7, 7], 3, 2, 1),
        (&[1, 1, 5, 5], 3, 1, 0),
        (&[1, 2, 7, 8], 2, 3, 1),
        (&[1, 2, 7, 9], 2, 2, 0),
        (&[1, 1, 8, 8], 3, 3, 0),
    ] {
        t.push(Case::new("max_pool2d", vec![x(xs)], move |_, v| {
            v[0].max_pool2d(k, s, p)
        }));
    }
    t.push(Case::new(
        "max_pool2d",
        vec![x(&[4, 16, 28, 28])],
        |_, v| v[0].max_pool2d(2, 2, 0),
    ));
    for (xs, k, s, p) in [(&[2, 3, 6, 6][..], 2, 2, 0), (&[1, 2, 7, 7], 3, 2, 1)] {
        t.push(Case::new("avg_pool2d", vec![x(xs)], move |_, v| {
            v[0].avg_pool2d(k, s, p)
        }));
    }
    t.push(Case::new(
        "global_avg_pool2d",
        vec![x(&[2, 3, 4, 5])],
        |_, v| v[0].global_avg_pool2d(),
    ));
    t.push(Case::new(
        "upsample_nearest2d",
        vec![x(&[1, 2, 3, 4])],
        |_, v| v[0].upsample_nearest2d(2),
    ));
    t.push(Case::new(
        "batch_norm",
        vec![x(&[4, 3, 2, 2]), x(&[3]), x(&[3])],
        |_, v| v[0].batch_norm(None, None, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5),
    ));
    t.push(Case::new("batch_norm", vec![x(&[6, 4])], |_, v| {
        v[0].batch_norm(None, None, None, None, true, 0.1, 1e-5)
    }));
    t.push(Case::new(
        "batch_norm",
        vec![
            x(&[3, 2, 2, 2]),
            fixed(x(&[2])),
            fixed(pos(&[2])),
            x(&[2]),
            x(&[2]),
        ],
        |_, v| {
            v[0].batch_norm(
                Some(&v[1]),
                Some(&v[2]),
                Some(&v[3]),
                Some(&v[4]),
                false,
                0.1,
                1e-5,
            )
        },
    ));
    t.push(Case::new(
        "layer_norm",
        vec![x(&[3, 4, 5]), x(&[5]), x(&[5])],
        |_, v| v[0].layer_norm(1, Some(&v[1]), Some(&v[2]), 1e-5),
    ));
    t.push(Case::new(
        "layer_norm",
        vec![x(&[2, 4, 5]), x(&[4, 5]), x(&[4, 5])],
        |_, v| v[0].layer_norm(2, Some(&v[1]), Some(&v[2]), 1e-5),
    ));

    // Random numbers: the same seed must give the same values on every backend.
    t.push(Case::new("uniform", vec![], |d, _| Tensor::rand(d, &[1000])).tol(0.0, 0.0));
    t.push(Case::new("uniform", vec![], |d, _| {
        Tensor::uniform(d, &[257], -2.0, 3.0)
    }));
    t.push(Case::new("normal", vec![], |d, _| Tensor::randn(d, &[1000])).tol(1e-5, 1e-4));
    t.push(
        Case::new("bernoulli", vec![], |d, _| {
            Tensor::bernoulli(d, &[1000], 0.3)
        })
        .tol(0.0, 0.0),
    );
    // Rows of seeded normals (seed-encoded genomes): seeds are small integers here.
    t.push(
        Case::new("randn_rows", vec![fixed(ints(&[5], 1000))], |_, v| {
            Tensor::randn_rows(&v[0], 333)
        })
        .tol(1e-5, 1e-4),
    );
    // One cart-pole step of random states (alive where the last column is non-zero) and pushes.
    t.push(
        Case::new(
            "cartpole_step",
            vec![fixed(x(&[300, 5])), fixed(x(&[300]))],
            |_, v| wgrad::evolve::cartpole::step(&v[0], &v[1]),
        )
        .tol(1e-5, 1e-4),
    );
    t.push(Case::new("dropout", vec![x(&[20])], |_, v| {
        v[0].dropout(0.25)
    }));

    // Optimizer updates: three steps with gradients g1, g2, g1; the row's output is the
    // parameter followed by the optimizer's state.
    type MakeOpt = fn(&[(String, Tensor)]) -> Box<dyn Optimizer>;
    let optimizers: [(&str, MakeOpt); 6] = [
        ("sgd", |p| Box::new(Sgd::new(p, 0.1).weight_decay(0.01))),
        ("sgd_momentum", |p| Box::new(Sgd::new(p, 0.1).momentum(0.9))),
        ("sgd_momentum", |p| {
            Box::new(Sgd::new(p, 0.05).momentum(0.8).nesterov().weight_decay(0.1))
        }),
        ("adam", |p| Box::new(Adam::new(p, 0.01).weight_decay(0.05))),
        ("adam", |p| Box::new(Adam::adamw(p, 0.01, 0.1))),
        ("rprop", |p| Box::new(Rprop::new(p))),
    ];
    for (op, make) in optimizers {
        for s in [&[1][..], &[65], &[3, 5]] {
            let ins = vec![fixed(x(s)), fixed(x(s)), fixed(x(s))];
            t.push(
                Case::new(op, ins, move |_, v| {
                    let mut opt = make(&[("p".to_string(), v[0].clone())]);
                    for g in [&v[1], &v[2], &v[1]] {
                        let mut grads = Grads::new();
                        grads.insert(&v[0], g.clone());
                        opt.record(&grads);
                    }
                    let mut parts = vec![v[0].reshape(&[v[0].numel()])];
                    parts.extend(opt.state().iter().map(|(_, t)| t.reshape(&[t.numel()])));
                    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
                })
                .tol(1e-5, 1e-4),
            );
        }
    }

    t.into_iter()
        .enumerate()
        .map(|(i, c)| c.seed(i as u64 + 1))
        .collect()
}

/// The row name of a dense layer through the kernel whose matmul row is `matmul`.
fn linear_name(matmul: &str) -> &'static str {
    match matmul {
        "matmul" => "linear",
        "matmul_naive" => "linear_naive",
        "matmul_tiled" => "linear_tiled",
        "matmul_shared" => "linear_shared",
        _ => "linear_subgroup",
    }
}

/// Rows of the table whose op is `name`.
pub fn cases_for(name: &str) -> Vec<Case> {
    cases().into_iter().filter(|c| c.op == name).collect()
}
