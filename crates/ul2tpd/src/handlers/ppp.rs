//! `ppp_start`: the daemon's PPP endpoint on a PPP session (`pppd.rs`).

use ul2tp_api::Attrs;

use crate::store::{ApiResult, Store};

/// Start the PPP endpoint; answered once IPCP is up or the link failed. `host_name` is
/// `[control] host_name` when the control plane runs, `ipv6_client` its
/// `ppp_ipv6_default_route` and `ppp_ipv6_pd`.
pub(crate) async fn start(
    d: &Store,
    host_name: Option<String>,
    ipv6_client: crate::ppp_ipv6::ClientV6,
    a: &Attrs,
) -> ApiResult<()> {
    // Our name names us in CHAP Challenges, and is the user name when only a password is
    // given.
    let user = match (&a.ppp_user, &a.ppp_password) {
        (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
        (None, Some(p)) => Some((
            host_name.clone().unwrap_or_else(|| "ul2tp".into()),
            p.clone(),
        )),
        (None, None) => None,
    };
    let setup = crate::pppd::PppSetup {
        local: a.ip_saddr,
        peer: a.ip_daddr,
        user,
        auth_name: host_name,
        // As client (no address of our own given), ask the peer for DNS servers (RFC 1877,
        // like pppd's `usepeerdns`); a peer that has none rejects the options.
        request_dns: a.ip_saddr.is_none(),
        ipv6_client,
        ..Default::default()
    };
    let ready = {
        let mut ctl = d.ctl.lock().await;
        let s = d.find_session(a)?;
        crate::pppd::start(d, &mut ctl, s, setup)?
    };
    // Answered once IPCP is up or the link failed (authentication rejected, ...).
    crate::pppd::wait_ready(ready).await
}
