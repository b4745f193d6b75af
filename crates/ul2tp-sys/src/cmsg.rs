//! Ancillary data (control messages) for `sendmsg` / `recvmsg`: one place that builds and
//! walks `cmsghdr` chains, used for descriptor passing (`SCM_RIGHTS`, [`crate::fdpass`]) and
//! for UDP GSO / GRO (`UDP_SEGMENT`, `UDP_GRO`, [`crate::mmsg`]).

/// A `msghdr` for one buffer (`iov`), no address, no control data yet. The caller keeps `iov`
/// (and whatever it points at) alive for as long as the header is used.
pub(crate) fn msghdr(iov: &mut libc::iovec) -> libc::msghdr {
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg
}

/// A control-message buffer aligned for `cmsghdr`, large enough for what ul2tp sends or
/// expects: 16 descriptors (`SCM_RIGHTS`) or one `UDP_SEGMENT` / `UDP_GRO` value.
#[repr(C, align(8))]
pub(crate) struct Buf([u8; Buf::LEN]);

impl Buf {
    /// Bytes of control space.
    pub(crate) const LEN: usize = 128;

    /// A zeroed buffer.
    pub(crate) fn new() -> Buf {
        Buf([0; Buf::LEN])
    }

    /// Point `msg` at the whole buffer, to receive into.
    pub(crate) fn attach_for_recv(&mut self, msg: &mut libc::msghdr) {
        msg.msg_control = self.0.as_mut_ptr().cast();
        msg.msg_controllen = Buf::LEN as _;
    }

    /// Store one control message (`level`, `ty`, `data`) as the only one in the buffer and
    /// point `msg` at it. `data` longer than the buffer allows is refused.
    pub(crate) fn put_one(
        &mut self,
        msg: &mut libc::msghdr,
        level: libc::c_int,
        ty: libc::c_int,
        data: &[u8],
    ) -> std::io::Result<()> {
        let data_len = libc::c_uint::try_from(data.len()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: CMSG_SPACE is pure arithmetic.
        let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        if data.len() > Buf::LEN || space > Buf::LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "control message too large",
            ));
        }
        self.0 = [0; Buf::LEN];
        msg.msg_control = self.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg_control points at this aligned, zeroed buffer of at least `space`
        // bytes, so CMSG_FIRSTHDR returns a header inside it whose data area holds
        // `data.len()` bytes; CMSG_LEN is pure arithmetic.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(msg);
            (*c).cmsg_level = level;
            (*c).cmsg_type = ty;
            (*c).cmsg_len = libc::CMSG_LEN(data_len) as _;
            std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(c), data.len());
        }
        Ok(())
    }
}

/// Call `f(level, type, data)` for every control message the kernel left in `msg`, whose
/// `msg_control` must point at a [`Buf`] passed to `recvmsg`.
pub(crate) fn for_each(msg: &libc::msghdr, mut f: impl FnMut(libc::c_int, libc::c_int, &[u8])) {
    // SAFETY: after recvmsg, msg_control holds msg_controllen bytes of well-formed cmsgs
    // written by the kernel; CMSG_FIRSTHDR / CMSG_NXTHDR stay within that range and return
    // null at its end. Each message's data area lies between CMSG_DATA and cmsg_len from
    // the header, inside the buffer, so the slice is valid for the loop iteration.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            let header = data.offset_from(c.cast::<u8>()) as usize;
            let len = ((*c).cmsg_len as usize).saturating_sub(header);
            f(
                (*c).cmsg_level,
                (*c).cmsg_type,
                std::slice::from_raw_parts(data, len),
            );
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
}
