//! [`codes!`](crate::codes!): one definition for an enum and its stable table of codes, names
//! and meanings. The error enums of every crate, [`MessageType`](crate::codec::MessageType),
//! [`Outcome`](crate::msg::Outcome) and [`FraudKind`](crate::msg::FraudKind) are written with
//! it, so `code()`, `name()` and the SPEC tables (rendered from [`Codes::TABLE`]) cannot
//! disagree.

/// One row of a code table: the code, the stable name and what it means (the variant's
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row<C> {
    /// The variant's identifier, as in the source.
    pub variant: &'static str,
    /// The stable code (a SPEC error code, a type byte, a wire value).
    pub code: C,
    /// The stable name.
    pub name: &'static str,
    /// What it means: the variant's documentation, each line ending in a newline (a table
    /// joins them with spaces).
    pub doc: &'static str,
}

/// An enum defined with [`codes!`](crate::codes!).
pub trait Codes: Sized + 'static {
    /// The type of the codes.
    type Code: Copy + PartialEq + 'static;
    /// Every variant's row, in definition order.
    const TABLE: &'static [Row<Self::Code>];
}

/// Defines an enum whose variants each carry a stable code and name, and its [`Codes`] table:
///
/// ```
/// offpay_protocol::codes! {
///     /// How a light is.
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum Light: u16 {
///         /// It shines.
///         On = (1, "on"),
///         /// It does not.
///         Off = (2, "off"),
///     }
/// }
/// assert_eq!(Light::Off.code(), 2);
/// assert_eq!(Light::from_code(1), Some(Light::On));
/// assert_eq!(Light::ALL, [Light::On, Light::Off]);
/// ```
///
/// `pub enum Name: repr(u8) { … }` makes each code the variant's discriminant too (`#[repr(u8)]`),
/// so `Name::Variant as u8` is its code.
///
/// A variant may carry one field (`Rejected(u16) = (3, "rejected")`); the enum then has no
/// `ALL` or `from_code`, only `code`, `name` and the table.
#[macro_export]
macro_rules! codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: repr($repr:ty) {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = ($code:expr, $text:literal),
            )+
        }
    ) => {
        $(#[$meta])*
        #[repr($repr)]
        $vis enum $name {
            $( $(#[doc = $doc])* $variant = $code, )+
        }

        $crate::codes!(@unit $name: $repr { $( [$($doc)*] $variant = ($code, $text), )+ });
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $repr:ty {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = ($code:expr, $text:literal),
            )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[doc = $doc])* $variant, )+
        }

        $crate::codes!(@unit $name: $repr { $( [$($doc)*] $variant = ($code, $text), )+ });
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $repr:ty {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident $(($field:ty))? = ($code:expr, $text:literal),
            )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[doc = $doc])* $variant $(($field))?, )+
        }

        $crate::codes!(@methods $name: $repr { $( [$($doc)*] $variant ($($field)?) = ($code, $text), )+ });
    };
    (@unit $name:ident: $repr:ty {
        $( [$($doc:literal)*] $variant:ident = ($code:expr, $text:literal), )+
    }) => {
        impl $name {
            /// Every variant, in code order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            /// The variant with this code; `None` for a code this version does not define.
            pub fn from_code(code: $repr) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code)
            }
        }

        $crate::codes!(@methods $name: $repr { $( [$($doc)*] $variant () = ($code, $text), )+ });
    };
    (@methods $name:ident: $repr:ty {
        $( [$($doc:literal)*] $variant:ident ($($field:ty)?) = ($code:expr, $text:literal), )+
    }) => {
        impl $name {
            /// The stable code.
            pub const fn code(&self) -> $repr {
                match self {
                    $( Self::$variant $(($crate::codes!(@any $field)))? => $code, )+
                }
            }

            /// The stable name.
            pub const fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant $(($crate::codes!(@any $field)))? => $text, )+
                }
            }
        }

        impl $crate::codes::Codes for $name {
            type Code = $repr;
            const TABLE: &'static [$crate::codes::Row<$repr>] = &[
                $( $crate::codes::Row {
                    variant: stringify!($variant),
                    code: $code,
                    name: $text,
                    doc: concat!($($doc, "\n"),*),
                }, )+
            ];
        }
    };
    (@any $field:ty) => { _ };
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::Codes;
    use crate::msg::{FraudKind, Outcome};

    /// The codes of FraudKind and Outcome claim to be their bytes on the wire.
    #[test]
    fn the_wire_values_are_the_codes() {
        let mut buf = [0u8; 8];
        for k in FraudKind::ALL {
            let out = postcard::to_slice(&k, &mut buf).expect("encodes");
            assert_eq!(out, &[k.code()][..], "{k:?}");
        }
        let outcomes = [
            Outcome::Credited,
            Outcome::Duplicate,
            Outcome::Pending,
            Outcome::Rejected(300),
            Outcome::Conflict,
        ];
        assert_eq!(outcomes.len(), Outcome::TABLE.len());
        for (o, row) in outcomes.iter().zip(Outcome::TABLE) {
            let out = postcard::to_slice(o, &mut buf).expect("encodes");
            assert_eq!(out[0], o.code(), "{o:?}");
            assert_eq!((row.code, row.name), (o.code(), o.name()));
        }
    }
}
