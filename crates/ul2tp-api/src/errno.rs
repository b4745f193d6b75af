//! Errno names the kernel's l2tp family (and the PPPoL2TP / L2TP-IP socket calls) return.

use serde::{Deserialize, Serialize};

macro_rules! errnos {
    ($($name:ident = $num:expr, $text:expr;)*) => {
        /// An errno, serialised by name (`"EEXIST"`).
        #[allow(clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Errno {
            $(
                #[doc = $text]
                $name,
            )*
        }

        impl Errno {
            /// The Linux x86_64 errno number.
            pub fn number(self) -> i32 {
                match self { $(Errno::$name => $num,)* }
            }

            /// The glibc `strerror` text, as `ip l2tp` prints after "RTNETLINK answers: ".
            pub fn strerror(self) -> &'static str {
                match self { $(Errno::$name => $text,)* }
            }

            /// The errno for a Linux errno number, if it is one of ours.
            pub fn from_number(n: i32) -> Option<Errno> {
                match n { $($num => Some(Errno::$name),)* _ => None }
            }

            /// The name, e.g. `"EEXIST"`.
            pub fn name(self) -> &'static str {
                match self { $(Errno::$name => stringify!($name),)* }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    EIO = 5, "Input/output error";
    EBADF = 9, "Bad file descriptor";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    ENODEV = 19, "No such device";
    EINVAL = 22, "Invalid argument";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Inappropriate ioctl for device";
    ENOSPC = 28, "No space left on device";
    ERANGE = 34, "Numerical result out of range";
    ENOSYS = 38, "Function not implemented";
    EBADR = 53, "Invalid request descriptor";
    EUSERS = 87, "Too many users";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EDESTADDRREQ = 89, "Destination address required";
    EPROTOTYPE = 91, "Protocol wrong type for socket";
    ENOPROTOOPT = 92, "Protocol not available";
    EPROTONOSUPPORT = 93, "Protocol not supported";
    EOPNOTSUPP = 95, "Operation not supported";
    EAFNOSUPPORT = 97, "Address family not supported by protocol";
    EADDRINUSE = 98, "Address already in use";
    EADDRNOTAVAIL = 99, "Cannot assign requested address";
    EALREADY = 114, "Operation already in progress";
    ENOTCONN = 107, "Transport endpoint is not connected";
    ETIMEDOUT = 110, "Connection timed out";
    ECONNREFUSED = 111, "Connection refused";
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
