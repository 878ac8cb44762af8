//! Accounts and tokens: GetUserToken, DeleteAccount, ModifyPassword,
//! RegisterUser, ForgotPassword (`Account.json`), OpenBankAccount (its own
//! in-memory database), QueryBalance (`Bank.json`).

use super::{check_token, gt_input, strip, ApiInfo, ApiResult, Args, Crash, Ctx, Output, Raised};
use crate::data::apibank::value::{self, dict, get, s};
use toolgym_reward::pycall::PyVal;

/// ForgotPassword's fixed code (`970420 # random.randint(100000, 999999)`).
pub(crate) const VERIFICATION_CODE: i128 = 970420;

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let name = Some(api.name);
    Ok(match api.name {
        "GetUserToken" => ApiResult::new(name, a.input(api), get_user_token(a, cx)),
        "DeleteAccount" => ApiResult::new(None, a.input(api), delete_account(a, cx)),
        "ModifyPassword" => ApiResult::new(name, a.input(api), modify_password(a, cx)),
        "RegisterUser" => ApiResult::new(None, a.input(api), register_user(a, cx)),
        "ForgotPassword" => ApiResult::new(None, a.input_kwargs("status"), forgot_password(a, cx)),
        "OpenBankAccount" => ApiResult::new(name, a.input(api), open_bank_account(a, cx)),
        _ => ApiResult::new(name, a.input(api), query_balance(a, cx)),
    })
}

fn get_user_token(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let db = cx.state.table("Account");
    let user = db
        .dict_get_key(&a.value("username"))
        .ok_or("The username does not exist.")?;
    if !get(user, "password").is_some_and(|p| p.py_eq(&a.value("password"))) {
        return Err("The password is incorrect.".into());
    }
    let token = get(user, "token").cloned().ok_or("KeyError: 'token'")?;
    Ok(Output::Value(dict([("token", token)])))
}

fn delete_account(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let username = check_token(cx.state, &a.value("token"))?;
    let key = s(&username);
    let db = cx.state.table_mut("Account");
    if db.dict_get_key(&key).is_none() {
        return Err("No such user.".into());
    }
    value::del_key(db, &key);
    Ok(Output::Value(dict([("status", s("success"))])))
}

fn modify_password(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let username = check_token(cx.state, &a.value("token"))?;
    let db = cx.state.table_mut("Account");
    let user =
        value::get_key_mut(db, &s(&username)).ok_or_else(|| format!("KeyError: {username:?}"))?;
    if !get(user, "password").is_some_and(|p| p.py_eq(&a.value("old_password"))) {
        return Err("The old password is incorrect.".into());
    }
    value::set_key(user, s("password"), a.value("new_password"));
    Ok(Output::Value(dict([("status", s("success"))])))
}

fn register_user(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let username = a.value("username");
    if cx.state.table("Account").dict_get_key(&username).is_some() {
        return Err("The username already exists.".into());
    }
    // `random.choices(ascii_letters + digits, k=18).lower()`; the check
    // ignores the token, so a per-episode sequence stands in for `random`.
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut token = String::with_capacity(18);
    while token.len() < 18 {
        let r = cx.state.next_serial();
        token.push(ALPHABET[(r % ALPHABET.len() as u64) as usize] as char);
    }
    let row = dict([
        ("password", a.value("password")),
        ("token", s(&token)),
        ("email", a.value("email")),
    ]);
    value::set_key(cx.state.table_mut("Account"), username, row);
    Ok(Output::Value(dict([("token", s(&token))])))
}

fn forgot_password(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let status = a.value("status");
    if status.py_eq(&s("Forgot Password")) {
        let (Some(username), Some(email)) = (a.get("username"), a.get("email")) else {
            return Err("The username and email are required for the first call.".into());
        };
        let user = cx
            .state
            .table("Account")
            .dict_get_key(username)
            .ok_or("The username does not exist.")?;
        if !get(user, "email").ok_or("KeyError: 'email'")?.py_eq(email) {
            return Err("The email is incorrect.".into());
        }
        cx.state.forgot = Some((PyVal::Int(VERIFICATION_CODE), username.py_str()));
        Ok(Output::Value(PyVal::Int(VERIFICATION_CODE)))
    } else if status.py_eq(&s("Verification Code")) {
        let Some((code, username)) = cx.state.forgot.clone() else {
            return Err("You need to call the API with status 'Forgot Password' at first.".into());
        };
        let (Some(new_password), Some(given)) = (a.get("new_password"), a.get("verification_code"))
        else {
            return Err(
                "The new password and verification code are required for the second call.".into(),
            );
        };
        if !code.py_eq(given) {
            return Err("The verification code is incorrect.".into());
        }
        let db = cx.state.table_mut("Account");
        let user = value::get_key_mut(db, &s(&username))
            .ok_or_else(|| format!("KeyError: {username:?}"))?;
        value::set_key(user, s("password"), new_password.clone());
        Ok(Output::Value(s("success")))
    } else {
        Err("The status is only 'Forgot Password' or 'Verification Code'.".into())
    }
}

fn open_bank_account(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let account = a.value("account");
    let db = &mut cx.state.bank_accounts;
    if let PyVal::Dict(rows) = &*db {
        if rows
            .iter()
            .any(|(_, row)| get(row, "account").is_some_and(|v| v.py_eq(&account)))
        {
            return Ok(Output::Value(s("failed")));
        }
    }
    let id = PyVal::Int(value::len(db) as i128 + 1);
    let row = dict([
        ("account", account),
        ("password", a.value("password")),
        ("name", a.value("name")),
    ]);
    value::set_key(db, id, row);
    Ok(Output::Value(s("success")))
}

fn query_balance(a: &Args, cx: &mut Ctx<'_>) -> Result<Output, String> {
    let token = a.value("token");
    if !matches!(token, PyVal::Str(_)) {
        return Err("The token is incorrect.".into());
    }
    let username =
        check_token(cx.state, &token).map_err(|_| "The token is incorrect.".to_string())?;
    let row = cx
        .state
        .table("Bank")
        .dict_get_key(&s(&username))
        .ok_or("The user does not have an account.")?;
    get(row, "balance")
        .cloned()
        .map(Output::Value)
        .ok_or_else(|| "KeyError: 'balance'".into())
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    match api.name {
        "RegisterUser" => {
            if super::gt_field(gt, "output")?.py_eq(&PyVal::None) && !r.output.is_none() {
                return Ok(false);
            }
            Ok(r.input_eq(gt)? && r.exception_eq(gt)?)
        }
        "ModifyPassword" => Ok(r.input_eq(gt)? && r.exception_eq(gt)? && r.output_eq(gt)?),
        "QueryBalance" => {
            let mine = strip(r.input("token")?)?;
            let theirs = strip(gt_input(gt, "token")?)?;
            Ok(mine == theirs && r.output_eq(gt)? && r.exception_eq(gt)?)
        }
        _ => r.exact(gt),
    }
}
