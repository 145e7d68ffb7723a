//! IIF and Switch choose a branch before evaluating it, as Entra's do: they are
//! expanded when an expression is compiled into CEL's conditional, so the usual
//! `IIF(IsPresent(x), Left(x, 3), "none")` never evaluates `Left` on a missing `x`.
//!
//! - `IIF(c, a, b)` becomes `__iif(c) ? a : b` (`__iif` reads null as false);
//! - `Switch(s, d, k1, v1, k2, v2, ...)` becomes
//!   `__switch(s, k1) ? v1 : (__switch(s, k2) ? v2 : d)` (`__switch` compares as text,
//!   a null source matching `""`).

use cel::Env;
use cel::common::ast::{CallExpr, Expr, IdedExpr, operators};
use cel::parser::{Macro, MacroExprHelper};

/// The function IIF's condition goes through.
pub const IIF_TEST: &str = "__iif";
/// The function Switch compares its source and a key with.
pub const SWITCH_MATCH: &str = "__switch";

fn call(h: &mut MacroExprHelper<'_>, name: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: name.into(),
        target: None,
        args,
    }))
}

fn conditional(h: &mut MacroExprHelper<'_>, test: IdedExpr, then: IdedExpr, otherwise: IdedExpr) -> IdedExpr {
    call(h, operators::CONDITIONAL, vec![test, then, otherwise])
}

/// CEL's standard environment with the IIF and Switch expansions.
pub fn env() -> Result<Env, String> {
    let mut env = Env::stdlib();
    env.add_macro(Macro::global("IIF", 3, |h, _target, args| {
        let otherwise = args.pop().unwrap_or_default();
        let then = args.pop().unwrap_or_default();
        let test = args.pop().unwrap_or_default();
        let test = call(h, IIF_TEST, vec![test]);
        Ok(Some(conditional(h, test, then, otherwise)))
    }))
    .map_err(|e| format!("cannot add the IIF macro: {e:?}"))?;
    env.add_macro(Macro::global_var_arg("IIF", |h, _target, args| {
        Err(h.new_error(
            0,
            format!(
                "IIF takes 3 arguments (condition, value if true, value if false), got {}",
                args.len()
            ),
        ))
    }))
    .map_err(|e| format!("cannot add the IIF macro: {e:?}"))?;
    env.add_macro(Macro::global_var_arg("Switch", |h, _target, args| {
        if args.len() < 2 || !args.len().is_multiple_of(2) {
            return Err(h.new_error(
                0,
                "Switch takes a source, a default and key/value pairs (an even number of arguments)",
            ));
        }
        let mut rest = std::mem::take(args);
        let source = rest.remove(0);
        let default = rest.remove(0);
        // Built from the last pair outwards: the first matching key wins.
        let mut result = default;
        while rest.len() >= 2 {
            let value = rest.pop().unwrap_or_default();
            let key = rest.pop().unwrap_or_default();
            let test = call(h, SWITCH_MATCH, vec![source.clone(), key]);
            result = conditional(h, test, value, result);
        }
        Ok(Some(result))
    }))
    .map_err(|e| format!("cannot add the Switch macro: {e:?}"))?;
    Ok(env)
}
