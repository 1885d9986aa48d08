//! AVIF and HEIC, read through the system's libheif, loaded when the first such file arrives.
//!
//! Why loaded at run time rather than linked: the Rust bindings (`libheif-rs`) need libheif
//! 1.17 or newer at build time, while Debian 12 ships 1.15; their vendored build needs cmake, a
//! C++ compiler and the codec development packages on every machine that builds shotgrade. A
//! library opened with `dlopen` keeps `cargo build` free of any C toolchain, uses the
//! distribution's maintained and security-patched decoders (libde265 for HEIC, dav1d for AVIF),
//! and leaves every other format working where libheif is absent — those two formats then get
//! an error that says what to install. The few C functions used here have kept their
//! signatures since libheif 1.x.
//!
//! The same rules as for every other format: the header's dimensions are checked against
//! [`Limits`] before a pixel is decoded (and libheif is told the largest side too), errors
//! carry an [`ErrorKind`], and the rotation and mirroring stored in the file (`irot`, `imir`)
//! are applied by libheif.

use image::DynamicImage;

#[cfg(not(feature = "heif"))]
use crate::error::ErrorKind;
use crate::error::ImageError;
use crate::load::Limits;

/// Which HEIF-based format a file is, from its `ftyp` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeifKind {
    /// AV1 in HEIF (`avif`, `avis` brands).
    Avif,
    /// HEVC in HEIF (`heic`, `heix`, … brands) or another HEIF image (`mif1`).
    Heic,
}

impl HeifKind {
    /// The name rows carry in `image.format`.
    pub fn name(self) -> &'static str {
        match self {
            HeifKind::Avif => "avif",
            HeifKind::Heic => "heic",
        }
    }
}

const AVIF_BRANDS: [&[u8; 4]; 2] = [b"avif", b"avis"];
const HEIC_BRANDS: [&[u8; 4]; 10] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1",
];

/// Recognises a HEIF file by its leading `ftyp` box: the major brand decides, else the
/// compatible brands (AVIF first: an AVIF file lists `mif1` too).
pub fn sniff(bytes: &[u8]) -> Option<HeifKind> {
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let box_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = box_len.clamp(12, bytes.len());
    let major = &bytes[8..12];
    // Compatible brands follow the major brand and its 4-byte minor version.
    let compatible: Vec<&[u8]> = bytes.get(16..end).unwrap_or(&[]).chunks_exact(4).collect();
    let is = |brands: &[&[u8; 4]], b: &[u8]| brands.iter().any(|x| x.as_slice() == b);
    if is(&AVIF_BRANDS, major) {
        Some(HeifKind::Avif)
    } else if is(&HEIC_BRANDS, major) && !compatible.iter().any(|b| is(&AVIF_BRANDS, b)) {
        Some(HeifKind::Heic)
    } else if compatible.iter().any(|b| is(&AVIF_BRANDS, b)) {
        Some(HeifKind::Avif)
    } else if compatible.iter().any(|b| is(&HEIC_BRANDS, b)) {
        Some(HeifKind::Heic)
    } else {
        None
    }
}

/// Decodes the primary image of an AVIF or HEIC file to RGB8 (RGBA8 when it has alpha).
pub fn decode(bytes: &[u8], kind: HeifKind, limits: &Limits) -> Result<DynamicImage, ImageError> {
    #[cfg(feature = "heif")]
    {
        let api = system::api()?;
        system::decode(api, bytes, kind, limits)
    }
    #[cfg(not(feature = "heif"))]
    {
        let _ = (bytes, limits);
        Err(ImageError::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "{} images are not supported by this build (built without the `heif` feature)",
                kind.name()
            ),
        ))
    }
}

/// The libheif version in use, or why there is none: for `shotgrade --version`-style reports
/// and for tests.
pub fn library_version() -> Result<String, ImageError> {
    #[cfg(feature = "heif")]
    {
        system::api().map(|api| api.version())
    }
    #[cfg(not(feature = "heif"))]
    {
        Err(ImageError::new(
            ErrorKind::UnsupportedFormat,
            "built without the `heif` feature",
        ))
    }
}

#[cfg(feature = "heif")]
mod system {
    use std::ffi::{CStr, c_char, c_int, c_void};
    use std::sync::OnceLock;

    use image::{DynamicImage, RgbImage, RgbaImage};
    use libloading::Library;

    use super::HeifKind;
    use crate::error::{ErrorKind, ImageError};
    use crate::load::{Limits, check_dimensions};

    /// `struct heif_error`, returned by value.
    #[repr(C)]
    struct HeifError {
        code: c_int,
        subcode: c_int,
        message: *const c_char,
    }

    /// Opaque libheif objects.
    #[repr(C)]
    struct Context {
        _private: [u8; 0],
    }
    #[repr(C)]
    struct Handle {
        _private: [u8; 0],
    }
    #[repr(C)]
    struct Image {
        _private: [u8; 0],
    }

    // Values of libheif's enums (heif.h), passed as C ints.
    const COLORSPACE_RGB: c_int = 1;
    const CHROMA_INTERLEAVED_RGB: c_int = 10;
    const CHROMA_INTERLEAVED_RGBA: c_int = 11;
    const CHANNEL_INTERLEAVED: c_int = 10;
    const ERROR_UNSUPPORTED_FILETYPE: c_int = 3;
    const ERROR_UNSUPPORTED_FEATURE: c_int = 4;
    const ERROR_MEMORY_ALLOCATION: c_int = 6;

    /// The functions used, resolved once. The library is kept open for the life of the
    /// process (a `static`), so the pointers stay valid.
    pub(super) struct Api {
        _library: Library,
        get_version: unsafe extern "C" fn() -> *const c_char,
        context_alloc: unsafe extern "C" fn() -> *mut Context,
        context_free: unsafe extern "C" fn(*mut Context),
        read_from_memory_without_copy:
            unsafe extern "C" fn(*mut Context, *const c_void, usize, *const c_void) -> HeifError,
        set_maximum_image_size_limit: unsafe extern "C" fn(*mut Context, c_int),
        get_primary_image_handle: unsafe extern "C" fn(*mut Context, *mut *mut Handle) -> HeifError,
        handle_release: unsafe extern "C" fn(*const Handle),
        handle_get_width: unsafe extern "C" fn(*const Handle) -> c_int,
        handle_get_height: unsafe extern "C" fn(*const Handle) -> c_int,
        handle_has_alpha_channel: unsafe extern "C" fn(*const Handle) -> c_int,
        decode_image: unsafe extern "C" fn(
            *const Handle,
            *mut *mut Image,
            c_int,
            c_int,
            *const c_void,
        ) -> HeifError,
        image_get_width: unsafe extern "C" fn(*const Image, c_int) -> c_int,
        image_get_height: unsafe extern "C" fn(*const Image, c_int) -> c_int,
        image_get_plane_readonly:
            unsafe extern "C" fn(*const Image, c_int, *mut c_int) -> *const u8,
        image_release: unsafe extern "C" fn(*const Image),
    }

    /// Where libheif is looked for: `SHOTGRADE_LIBHEIF` (a path) if set, else the names the
    /// platforms install it under.
    fn candidates() -> Vec<String> {
        if let Ok(path) = std::env::var("SHOTGRADE_LIBHEIF") {
            return vec![path];
        }
        [
            "libheif.so.1",
            "libheif.so",
            "libheif.1.dylib",
            "libheif.dylib",
            "libheif.dll",
            "heif.dll",
        ]
        .map(String::from)
        .to_vec()
    }

    pub(super) fn api() -> Result<&'static Api, ImageError> {
        static API: OnceLock<Result<Api, String>> = OnceLock::new();
        API.get_or_init(|| Api::load(&candidates()))
            .as_ref()
            .map_err(|why| ImageError::new(ErrorKind::UnsupportedFormat, why.clone()))
    }

    impl Api {
        /// Opens the first library of `names` that loads and resolves every function.
        pub(super) fn load(names: &[String]) -> Result<Api, String> {
            let mut last = String::from("no library name to try");
            for name in names {
                // SAFETY: loading runs the library's initialisers; libheif's are plain C++
                // static constructors with no preconditions.
                match unsafe { Library::new(name) } {
                    Ok(library) => match Api::resolve(library) {
                        Ok(api) => return Ok(api),
                        Err(e) => last = format!("{name}: {e}"),
                    },
                    Err(e) => last = e.to_string(),
                }
            }
            Err(format!(
                "reading AVIF and HEIC needs the system library libheif, which could not be \
                 loaded ({last}); install it (Debian/Ubuntu: apt-get install libheif1, macOS: \
                 brew install libheif) or set SHOTGRADE_LIBHEIF to its path"
            ))
        }

        fn resolve(library: Library) -> Result<Api, libloading::Error> {
            // SAFETY: each symbol is declared with the signature heif.h gives it; the library
            // outlives the copied pointers because it is stored beside them.
            unsafe {
                macro_rules! sym {
                    ($name:literal) => {
                        *library.get(concat!($name, "\0").as_bytes())?
                    };
                }
                let init: unsafe extern "C" fn(*const c_void) -> HeifError = sym!("heif_init");
                let api = Api {
                    get_version: sym!("heif_get_version"),
                    context_alloc: sym!("heif_context_alloc"),
                    context_free: sym!("heif_context_free"),
                    read_from_memory_without_copy: sym!(
                        "heif_context_read_from_memory_without_copy"
                    ),
                    set_maximum_image_size_limit: sym!("heif_context_set_maximum_image_size_limit"),
                    get_primary_image_handle: sym!("heif_context_get_primary_image_handle"),
                    handle_release: sym!("heif_image_handle_release"),
                    handle_get_width: sym!("heif_image_handle_get_width"),
                    handle_get_height: sym!("heif_image_handle_get_height"),
                    handle_has_alpha_channel: sym!("heif_image_handle_has_alpha_channel"),
                    decode_image: sym!("heif_decode_image"),
                    image_get_width: sym!("heif_image_get_width"),
                    image_get_height: sym!("heif_image_get_height"),
                    image_get_plane_readonly: sym!("heif_image_get_plane_readonly"),
                    image_release: sym!("heif_image_release"),
                    _library: library,
                };
                // Loads the decoder plugins of libheif builds that ship them separately
                // (Debian 13 and later); with built-in decoders it only counts a reference.
                let _ = init(std::ptr::null());
                Ok(api)
            }
        }

        pub(super) fn version(&self) -> String {
            // SAFETY: returns a static NUL-terminated string.
            let v = unsafe { (self.get_version)() };
            if v.is_null() {
                return "unknown".into();
            }
            // SAFETY: non-null, NUL-terminated, static.
            unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned()
        }
    }

    /// Turns a libheif error into ours (`Ok` when its code is 0).
    fn check(e: HeifError, kind: HeifKind) -> Result<(), ImageError> {
        if e.code == 0 {
            return Ok(());
        }
        let message = if e.message.is_null() {
            String::from("unknown error")
        } else {
            // SAFETY: libheif documents the message as always defined and NUL-terminated,
            // and static or owned by the context, which is alive here.
            unsafe { CStr::from_ptr(e.message) }
                .to_string_lossy()
                .into_owned()
        };
        let name = kind.name();
        let error_kind = match e.code {
            ERROR_UNSUPPORTED_FILETYPE | ERROR_UNSUPPORTED_FEATURE => ErrorKind::UnsupportedFormat,
            ERROR_MEMORY_ALLOCATION => ErrorKind::TooLarge,
            _ => ErrorKind::Corrupt,
        };
        let what = match error_kind {
            ErrorKind::UnsupportedFormat => "unsupported",
            ErrorKind::TooLarge => "too large",
            _ => "corrupt",
        };
        Err(ImageError::new(
            error_kind,
            format!("{what} {name} data: {message} (libheif code {})", e.code),
        ))
    }

    /// Frees what libheif allocated, whichever way the decode ends.
    struct Owned<'a, T> {
        ptr: *mut T,
        free: &'a dyn Fn(*mut T),
    }

    impl<T> Drop for Owned<'_, T> {
        fn drop(&mut self) {
            if !self.ptr.is_null() {
                (self.free)(self.ptr);
            }
        }
    }

    pub(super) fn decode(
        api: &Api,
        bytes: &[u8],
        kind: HeifKind,
        limits: &Limits,
    ) -> Result<DynamicImage, ImageError> {
        // SAFETY (whole function): every pointer passed to libheif is either one it returned
        // and that is still owned (`Owned` frees it after its last use), or `bytes`, which
        // outlives the context that reads it without a copy.
        let free_context = |p: *mut Context| unsafe { (api.context_free)(p) };
        let context = Owned {
            ptr: unsafe { (api.context_alloc)() },
            free: &free_context,
        };
        if context.ptr.is_null() {
            return Err(ImageError::new(
                ErrorKind::Internal,
                "libheif could not allocate a context",
            ));
        }
        let side = c_int::try_from(limits.max_side).unwrap_or(c_int::MAX);
        unsafe { (api.set_maximum_image_size_limit)(context.ptr, side) };
        check(
            unsafe {
                (api.read_from_memory_without_copy)(
                    context.ptr,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    std::ptr::null(),
                )
            },
            kind,
        )?;

        let free_handle = |p: *mut Handle| unsafe { (api.handle_release)(p) };
        let mut handle = Owned {
            ptr: std::ptr::null_mut(),
            free: &free_handle,
        };
        check(
            unsafe { (api.get_primary_image_handle)(context.ptr, &mut handle.ptr) },
            kind,
        )?;
        if handle.ptr.is_null() {
            return Err(ImageError::new(
                ErrorKind::Corrupt,
                format!("{} file has no primary image", kind.name()),
            ));
        }
        let width = unsafe { (api.handle_get_width)(handle.ptr) };
        let height = unsafe { (api.handle_get_height)(handle.ptr) };
        check_dimensions(
            u32::try_from(width).unwrap_or(0),
            u32::try_from(height).unwrap_or(0),
            limits,
        )?;
        let alpha = unsafe { (api.handle_has_alpha_channel)(handle.ptr) } != 0;
        let (chroma, channels) = if alpha {
            (CHROMA_INTERLEAVED_RGBA, 4usize)
        } else {
            (CHROMA_INTERLEAVED_RGB, 3usize)
        };

        let free_image = |p: *mut Image| unsafe { (api.image_release)(p) };
        let mut image = Owned {
            ptr: std::ptr::null_mut(),
            free: &free_image,
        };
        check(
            unsafe {
                (api.decode_image)(
                    handle.ptr,
                    &mut image.ptr,
                    COLORSPACE_RGB,
                    chroma,
                    std::ptr::null(),
                )
            },
            kind,
        )?;
        if image.ptr.is_null() {
            return Err(ImageError::new(
                ErrorKind::Corrupt,
                format!("{} decoder returned no image", kind.name()),
            ));
        }
        // The decoded size (after rotation) is what the plane holds; check it again.
        let w = unsafe { (api.image_get_width)(image.ptr, CHANNEL_INTERLEAVED) };
        let h = unsafe { (api.image_get_height)(image.ptr, CHANNEL_INTERLEAVED) };
        let (w, h) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
        check_dimensions(w, h, limits)?;
        let mut stride: c_int = 0;
        let plane =
            unsafe { (api.image_get_plane_readonly)(image.ptr, CHANNEL_INTERLEAVED, &mut stride) };
        let row_bytes = w as usize * channels;
        let stride = usize::try_from(stride).unwrap_or(0);
        if plane.is_null() || stride < row_bytes {
            return Err(ImageError::new(
                ErrorKind::Corrupt,
                format!("{} decoder returned no usable pixel plane", kind.name()),
            ));
        }
        let mut pixels = Vec::with_capacity(row_bytes * h as usize);
        for y in 0..h as usize {
            // SAFETY: the plane holds `h` rows of `stride` bytes, `stride ≥ row_bytes`.
            let row = unsafe { std::slice::from_raw_parts(plane.add(y * stride), row_bytes) };
            pixels.extend_from_slice(row);
        }
        let wrong = || {
            ImageError::new(
                ErrorKind::Internal,
                "decoded pixel count does not match the image size",
            )
        };
        Ok(if alpha {
            DynamicImage::ImageRgba8(RgbaImage::from_raw(w, h, pixels).ok_or_else(wrong)?)
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels).ok_or_else(wrong)?)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_missing_library_says_what_to_install() {
            let err = Api::load(&["/nonexistent/libheif.so.1".into()])
                .err()
                .expect("no library there");
            assert!(err.contains("apt-get install libheif1"), "{err}");
            assert!(err.contains("SHOTGRADE_LIBHEIF"), "{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let len = 16 + 4 * compatible.len();
        let mut b = (len as u32).to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0, 0, 0, 0]);
        for c in compatible {
            b.extend_from_slice(*c);
        }
        b.extend_from_slice(b"\0\0\0\x08meta");
        b
    }

    #[test]
    fn brands_decide_the_format() {
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1"])), Some(HeifKind::Avif));
        assert_eq!(
            sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            Some(HeifKind::Heic)
        );
        assert_eq!(sniff(&ftyp(b"mif1", &[b"avif"])), Some(HeifKind::Avif));
        assert_eq!(sniff(&ftyp(b"mif1", &[b"miaf"])), Some(HeifKind::Heic));
        assert_eq!(sniff(&ftyp(b"mif1", &[])), Some(HeifKind::Heic));
        // MP4 video and QuickTime are ISO boxes too, but not images.
        assert_eq!(sniff(&ftyp(b"isom", &[b"mp41"])), None);
        assert_eq!(sniff(&ftyp(b"qt  ", &[])), None);
    }

    #[test]
    fn short_or_odd_headers_are_not_heif() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\0\0\0\x0cftyp"), None);
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0"), None);
        // A box length beyond the data, or shorter than the header, is clamped.
        let mut b = ftyp(b"mif1", &[b"avif"]);
        b[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(sniff(&b), Some(HeifKind::Avif));
        b[..4].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(sniff(&b), Some(HeifKind::Heic));
    }

    #[test]
    fn names_are_the_row_format_names() {
        assert_eq!(HeifKind::Avif.name(), "avif");
        assert_eq!(HeifKind::Heic.name(), "heic");
    }
}
