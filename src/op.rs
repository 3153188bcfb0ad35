//! The op contract. One definition per op holds its CPU reference, its kernel description (plain
//! data: which shader, its parameters, how many workgroups) and its backward rule; the shape rule
//! sits in the `Tensor` method beside it. Backends interpret ops; they never list them.

use crate::Tensor;
pub use crate::shape::Layout;

/// A WGSL compute shader: a name (its path under `shaders/`, unique per source) and its source.
/// Every shader has one entry point, `main`, and binds its inputs (read-only storage), then its
/// outputs (read-write storage), then one uniform of parameters, all in group 0.
#[derive(Debug)]
pub struct Shader {
    /// Its path under `shaders/` (without `.wgsl`), unique per source; pipelines are cached by it.
    pub name: &'static str,
    /// The WGSL source.
    pub source: &'static str,
}

/// Build a [`Shader`] from WGSL files, concatenated in order (a shared wrapper holding the entry
/// point, then a small body file defining the functions it calls), read at compile time.
///
/// `shader!("name", "a.wgsl", "b.wgsl")` reads the files from the `shaders/` folder of the crate
/// that uses the macro; `shader!("name", in "kernels", "a.wgsl")` from another folder under that
/// crate's root. The name identifies the pipeline on a device: two shaders with one name and
/// different sources are an error when the second runs, so prefix yours (`"mycrate/swish"`).
/// Check a shader before running it with [`crate::check::validate_shader`].
///
/// ```ignore
/// static SWISH: wgrad::op::Shader = wgrad::shader!("demo/swish", in "kernels", "swish.wgsl");
/// ```
#[macro_export]
macro_rules! shader {
    ($name:expr, in $dir:literal, $($file:expr),+ $(,)?) => {
        $crate::op::Shader {
            name: $name,
            source: concat!($(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $file))),+),
        }
    };
    ($name:expr, $($file:expr),+ $(,)?) => {
        $crate::shader!($name, in "shaders", $($file),+)
    };
}
pub use crate::shader;

/// The longest loop any kernel runs in one invocation. llvmpipe (lavapipe) silently stops a loop
/// nest after 65,535 iterations, so ops whose loops would run longer (a product over more than
/// this many terms, softmax over wider rows, a reduction or a scatter over more elements) are
/// split into shorter pieces on the host, on every backend alike.
pub const MAX_LOOP: usize = 65_535;

/// Invocations per workgroup of the one-dimensional kernels (elementwise, copies, rows).
pub const WG: u64 = 256;

/// What the GPU runs for one node: a shader, its uniform parameters, and the workgroup count. The
/// executor spreads counts above 65,535 over y and z; shaders rebuild the linear workgroup index.
///
/// A kernel may need something not every adapter has (8-lane subgroups) and name a fallback for
/// adapters without it; with `background` set, it is also compiled on another thread while the
/// fallback runs. A kernel and its fallback must compute the same values.
pub struct Kernel {
    /// What runs.
    pub shader: &'static Shader,
    /// The uniform parameter block, as the shader's `Params` struct lays it out.
    pub params: Vec<u8>,
    /// Workgroups to dispatch (0 runs nothing).
    pub workgroups: u64,
    /// What the adapter must offer for this kernel to run.
    pub needs: Needs,
    /// What runs where the adapter lacks `needs` (or while this compiles in the background).
    pub fallback: Option<Box<Kernel>>,
    /// Compile on another thread while the fallback runs.
    pub background: bool,
}

/// Adapter capabilities a kernel may require.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Needs {
    #[default]
    /// Any adapter.
    Nothing,
    /// Subgroup operations with subgroups of exactly 8 lanes (lavapipe on AVX2 machines).
    Subgroup8,
    /// An adapter that is a GPU rather than a CPU, where workgroup memory is fast, offering at
    /// least 32 KiB of it per workgroup.
    HardwareGpu,
}

/// Largest parameter block a kernel may have (one dynamic-offset slot of the step's uniform buffer).
pub const MAX_PARAMS: usize = 256;

impl Kernel {
    /// A kernel with a `#[repr(C)]` parameter struct.
    pub fn new<P: bytemuck::Pod>(shader: &'static Shader, params: &P, workgroups: u64) -> Kernel {
        let params = bytemuck::bytes_of(params).to_vec();
        assert!(
            params.len() <= MAX_PARAMS,
            "{}: parameters are {} bytes, more than {MAX_PARAMS}",
            shader.name,
            params.len()
        );
        Kernel {
            shader,
            params,
            workgroups,
            needs: Needs::Nothing,
            fallback: None,
            background: false,
        }
    }

    /// This kernel where the adapter offers `needs`, `fallback` elsewhere.
    pub fn requiring(mut self, needs: Needs, fallback: Kernel) -> Kernel {
        self.needs = needs;
        self.fallback = Some(Box::new(fallback));
        self
    }

    /// Compile this kernel on a background thread the first time it is asked for, running the
    /// fallback until it is ready (for kernels that take long to compile).
    pub fn compiled_in_background(mut self) -> Kernel {
        assert!(
            self.fallback.is_some(),
            "{}: a background kernel needs a fallback",
            self.shader.name
        );
        self.background = true;
        self
    }

    /// One invocation per four elements (a `vec4<f32>`), [`WG`] invocations per workgroup.
    pub fn per_vec4<P: bytemuck::Pod>(shader: &'static Shader, params: &P, n: usize) -> Kernel {
        Kernel::per_element(shader, params, n.div_ceil(4))
    }

    /// One invocation per element, [`WG`] invocations per workgroup.
    pub fn per_element<P: bytemuck::Pod>(shader: &'static Shader, params: &P, n: usize) -> Kernel {
        Kernel::new(shader, params, (n as u64).div_ceil(WG))
    }
}

/// What an op's CPU reference sees of one input: its values and their layout. For an op that
/// does not read strides ([`Op::strided`] false) the layout is always plain and `values` holds
/// exactly the tensor's elements in row-major order; otherwise `values` is the whole storage
/// and `layout` says where each element is.
pub struct Input<'a> {
    /// The values (see above).
    pub values: &'a [f64],
    /// Where the tensor's elements lie in `values`.
    pub layout: &'a Layout,
}

impl Input<'_> {
    /// Element `i` in row-major order, through the layout.
    pub fn at(&self, i: usize) -> f64 {
        self.values[self.layout.index(i)]
    }
}

/// What a backward rule sees: the node's inputs, its output, the gradient flowing into it, and
/// which inputs need a gradient (a rule may return `None` for the others and record nothing).
pub struct BackwardCtx<'a> {
    /// The node's inputs, as recorded.
    pub inputs: &'a [Tensor],
    /// The node's output (for rules written in terms of it, such as exp's).
    pub output: &'a Tensor,
    /// The gradient of the loss with respect to the output.
    pub grad: &'a Tensor,
    /// For each input, whether a gradient is wanted for it.
    pub needs: &'a [bool],
}

/// One operation. The CPU reference is the oracle: plain loops over f64.
pub trait Op {
    /// The op's name, as the `Tensor` method and the test table call it.
    fn name(&self) -> &'static str;

    /// Reference implementation: reads `inputs`, writes every element of every output
    /// (row-major). A pure op has one output, freshly allocated; an update op (optimizer step)
    /// receives the tensors it updates in place, holding their current values.
    fn cpu(&self, inputs: &[Input<'_>], outputs: &mut [&mut [f64]]);

    /// The GPU kernel for this node, given its inputs' layouts and its output's (contiguous;
    /// of shape `[0]` for an update op). Inputs are bound whole, so a strided op's kernel reads
    /// them through their strides and offsets.
    fn kernel(&self, inputs: &[&Layout], output: &Layout) -> Kernel;

    /// Gradients of the inputs, in input order; `None` where an input gets none. Written with
    /// ordinary tensor ops so it runs on either backend; the tape sums broadcast gradients back to
    /// each input's shape.
    fn backward(&self, ctx: &BackwardCtx) -> Vec<Option<Tensor>> {
        let _ = ctx;
        panic!(
            "{}: this op has no backward rule (it is itself a gradient kernel, so second-order \
             gradients through it are not supported)",
            self.name()
        )
    }

    /// False for ops whose output never carries a gradient (comparisons, argmax, random numbers).
    fn differentiable(&self) -> bool {
        true
    }

    /// True if the output is a view of input 0's storage (its layout is set when the node is
    /// recorded): no kernel runs.
    fn is_view(&self) -> bool {
        false
    }

    /// True if the op reads its inputs through their layouts (strides and offsets); otherwise
    /// every input that is not plain is copied into a contiguous tensor first, when the op is
    /// recorded.
    fn strided(&self) -> bool {
        false
    }
}

/// Shapes as the `u32` arrays kernels read from their uniforms (rank ≤ 8, padded with 1s or 0s).
pub(crate) fn pack8(values: &[usize], pad: u32) -> [[u32; 4]; 2] {
    assert!(
        values.len() <= 8,
        "kernels support rank ≤ 8, got {}",
        values.len()
    );
    let mut out = [[pad; 4]; 2];
    for (i, v) in values.iter().enumerate() {
        out[i / 4][i % 4] = u32::try_from(*v).expect("dimension exceeds u32");
    }
    out
}
