//! The CPU reference backend: runs each node's reference loop (f64 inside) in tape order. An op
//! that reads strides gets its inputs' whole storage and layouts; any other gets exactly its
//! inputs' elements (the tape made them contiguous when it was recorded).

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::op::Input;
use crate::tape::{Node, Storage};

fn values(node: &Node) -> Option<Rc<RefCell<Vec<f64>>>> {
    match node.storage() {
        Storage::Cpu(v) => Some(v),
        Storage::Empty => None,
        Storage::Gpu(_) => unreachable!("GPU storage on the CPU device"),
    }
}

/// Run `nodes` in order. A node that ran keeps its result even if a later one fails.
pub(crate) fn run(nodes: &[Rc<Node>], anomaly: bool) -> Result<()> {
    for node in nodes {
        let op = node.op.as_ref().expect("only op nodes are pending");
        let inputs = node.inputs.borrow();
        if op.is_view() {
            *node.storage.borrow_mut() = Some(inputs[0].storage());
            continue;
        }
        let held: Vec<Option<Rc<RefCell<Vec<f64>>>>> = inputs.iter().map(|n| values(n)).collect();
        let borrowed: Vec<Option<std::cell::Ref<'_, Vec<f64>>>> = held
            .iter()
            .map(|v| v.as_ref().map(|v| v.borrow()))
            .collect();
        let strided = op.strided();
        let ins: Vec<Input<'_>> = borrowed
            .iter()
            .zip(inputs.iter())
            .map(|(b, n)| {
                let all = b.as_ref().map_or(&[][..], |v| v.as_slice());
                Input {
                    values: if strided {
                        all
                    } else {
                        &all[..n.layout.numel().min(all.len())]
                    },
                    layout: &n.layout,
                }
            })
            .collect();
        if node.targets.is_empty() {
            let mut out = zeros(node, node.layout.numel())?;
            op.cpu(&ins, &mut [&mut out]);
            let finite = if anomaly {
                check_finite(node, &out)
            } else {
                Ok(())
            };
            let storage = if out.is_empty() {
                Storage::Empty
            } else {
                Storage::Cpu(Rc::new(RefCell::new(out)))
            };
            *node.storage.borrow_mut() = Some(storage);
            finite?;
        } else {
            let held: Vec<Option<Rc<RefCell<Vec<f64>>>>> =
                node.targets.iter().map(|n| values(n)).collect();
            let mut borrowed: Vec<Option<std::cell::RefMut<'_, Vec<f64>>>> = held
                .iter()
                .map(|v| v.as_ref().map(|v| v.borrow_mut()))
                .collect();
            let mut outs: Vec<&mut [f64]> = borrowed
                .iter_mut()
                .map(|b| b.as_mut().map_or(&mut [][..], |v| v.as_mut_slice()))
                .collect();
            op.cpu(&ins, &mut outs);
            *node.storage.borrow_mut() = Some(Storage::Empty);
            if anomaly {
                for o in &outs {
                    check_finite(node, o)?;
                }
            }
        }
    }
    Ok(())
}

/// A zeroed output, or an error (not an abort) if the host cannot hold it.
fn zeros(node: &Node, n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|e| Error::OutOfMemory {
        op: node.op_name().to_string(),
        message: format!(
            "the CPU reference cannot hold {n} values of shape {:?}: {e}",
            node.shape()
        ),
    })?;
    out.resize(n, 0.0);
    Ok(out)
}

fn check_finite(node: &Node, values: &[f64]) -> Result<()> {
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::Anomaly {
            op: node.op_name().to_string(),
            location: node.location.to_string(),
            value: v.to_string(),
        });
    }
    Ok(())
}
