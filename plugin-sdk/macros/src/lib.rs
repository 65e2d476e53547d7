//! Attribute macros of [`natrium-plugin-sdk`](https://docs.rs/natrium-plugin-sdk): use them
//! through the SDK (`use natrium_plugin_sdk::prelude::*;`), not from this crate directly.
//!
//! Each macro keeps the author's function as it is and emits, next to it, a hidden type that
//! implements the exported WIT interface by calling that function, then the SDK's `export!`
//! glue for the matching world. The call goes through a function pointer of the exact expected
//! type, spanned on the author's function name, so a wrong signature is a type error that points
//! at the author's code:
//!
//! ```text
//! error[E0308]: mismatched types
//!  --> src/lib.rs:4:4
//!   |
//! 4 | fn redact(account: String, msg: Message) -> Outcome {
//!   |    ^^^^^^ expected fn pointer, found fn item
//!   |
//!   = note: expected fn pointer `for<'a> fn(&'a str, Message) -> Outcome`
//!                 found fn item `fn(String, Message) -> Outcome {redact}`
//! ```
//!
//! The export glue is emitted only when compiling for wasm32: natively (`cargo test`) the
//! function is type-checked the same way but nothing is exported, so plugin crates can be
//! `cdylib`s and still be unit-tested on the build machine.
//!
//! The generated code names the SDK as `::natrium_plugin_sdk`: depend on it under that name.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::{parse::Parser, punctuated::Punctuated, spanned::Spanned, ItemFn, Meta, Token};

/// Makes `fn(request: ConnectRequest) -> Decision` the plugin's authorizer (world `authorizer`).
///
/// ```ignore
/// #[authorizer]
/// fn authorize(req: ConnectRequest) -> Decision { Decision::deny("nobody gets in") }
/// ```
#[proc_macro_attribute]
pub fn authorizer(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Authorizer, attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes `fn(account: &str, subject: &str) -> Option<String>` the plugin's subject mapper
/// (world `mapper`). Write `#[mapper(deterministic)]` when the result depends only on the
/// arguments (and the plugin's configuration): the broker then caches it per subject.
///
/// ```ignore
/// #[mapper(deterministic)]
/// fn map(account: &str, subject: &str) -> Option<String> { None }
/// ```
#[proc_macro_attribute]
pub fn mapper(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Mapper, attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes `fn(account: &str, msg: Message) -> Outcome` the plugin's message transformer (world
/// `transformer`). The batch export (`transform-batch`) calls it once per message, in order.
///
/// ```ignore
/// #[transformer]
/// fn transform(account: &str, msg: Message) -> Outcome { Outcome::Pass }
/// ```
/// Turns `fn(account: &str, batch: &Batch) -> Decisions` into a `batch-transformer` plugin.
#[proc_macro_attribute]
pub fn batch_transformer(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::BatchTransformer, attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[proc_macro_attribute]
pub fn transformer(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Transformer, attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes `fn(config: &str) -> Result<(), String>` the plugin's configuration check (the
/// optional `lifecycle` export, next to the plugin's main macro). The broker calls it once per
/// instance, before any hook, with the binding's configuration JSON; an `Err` refuses the
/// configuration at load — start-up, `natrium -t` and reload fail with its message.
///
/// ```ignore
/// static SETTINGS: Config<Settings> = Config::new();
///
/// #[init]
/// fn check(_config: &str) -> Result<(), String> {
///     SETTINGS.get().map(|_| ()).map_err(|e| e.to_string())
/// }
/// ```
#[proc_macro_attribute]
pub fn init(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Init, attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Init,
    Authorizer,
    Mapper,
    Transformer,
    BatchTransformer,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Authorizer => "authorizer",
            Kind::Mapper => "mapper",
            Kind::Transformer => "transformer",
            Kind::BatchTransformer => "batch_transformer",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Init => "fn(config: &str) -> Result<(), String>",
            Kind::Authorizer => "fn(request: ConnectRequest) -> Decision",
            Kind::Mapper => "fn(account: &str, subject: &str) -> Option<String>",
            Kind::Transformer => "fn(account: &str, msg: Message) -> Outcome",
            Kind::BatchTransformer => "fn(account: &str, batch: &Batch) -> Decisions",
        }
    }
}

fn expand(kind: Kind, attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            format!(
                "#[{}] goes on a plain function: {}",
                kind.name(),
                kind.expected()
            ),
        )
    })?;
    let deterministic = parse_args(kind, attr)?;
    check_shape(kind, &func)?;

    let ident = &func.sig.ident;
    // Every token of the typed coercion carries the span of the author's function name, so
    // type errors (wrong argument or return types) are reported there.
    let span = ident.span();
    let sdk = quote_spanned!(span=> ::natrium_plugin_sdk);
    let glue = match kind {
        Kind::Init => quote_spanned! {span=>
            #[allow(dead_code)]
            struct __NatriumInit;
            impl #sdk::__private::LifecycleGuest for __NatriumInit {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    let user: fn(&str) -> ::std::result::Result<(), ::std::string::String> =
                        #ident;
                    user(&config)
                }
            }
            #[cfg(target_arch = "wasm32")]
            #sdk::__private::export_configured!(
                __NatriumInit with_types_in #sdk::bindings::configured
            );
        },
        Kind::Transformer => quote_spanned! {span=>
            #[allow(dead_code)]
            const USER: fn(&str, #sdk::Message) -> #sdk::Outcome = #ident;
            #[allow(dead_code)]
            struct __NatriumTransformer;
            impl #sdk::__private::TransformationGuest for __NatriumTransformer {
                fn transform(
                    account: ::std::string::String,
                    msg: #sdk::Message,
                ) -> #sdk::Outcome {
                    USER(&account, msg)
                }
                fn transform_batch(
                    account: ::std::string::String,
                    msgs: ::std::vec::Vec<#sdk::Message>,
                ) -> ::std::vec::Vec<#sdk::Outcome> {
                    msgs.into_iter().map(|msg| USER(&account, msg)).collect()
                }
            }
            #[cfg(target_arch = "wasm32")]
            #sdk::__private::export_transformer!(
                __NatriumTransformer with_types_in #sdk::bindings::transformer
            );
        },
        Kind::BatchTransformer => quote_spanned! {span=>
            #[allow(dead_code)]
            const USER: fn(&str, &#sdk::Batch) -> #sdk::Decisions = #ident;
            #[allow(dead_code)]
            struct __NatriumBatchTransformer;
            impl #sdk::__private::BatchTransformationGuest for __NatriumBatchTransformer {
                fn transform_pending(
                    account: ::std::string::String,
                    count: u32,
                ) -> ::std::vec::Vec<#sdk::__private::BatchDecision> {
                    USER(&account, &#sdk::Batch::__new(count)).__into_wit()
                }
            }
            #[cfg(target_arch = "wasm32")]
            #sdk::__private::export_batch_transformer!(
                __NatriumBatchTransformer with_types_in #sdk::bindings::batch_transformer
            );
        },
        Kind::Mapper => quote_spanned! {span=>
            #[allow(dead_code)]
            struct __NatriumMapper;
            impl #sdk::__private::MappingGuest for __NatriumMapper {
                fn deterministic() -> bool {
                    #deterministic
                }
                fn map(
                    account: ::std::string::String,
                    subject: ::std::string::String,
                ) -> ::std::option::Option<::std::string::String> {
                    let user: fn(&str, &str) -> ::std::option::Option<::std::string::String> =
                        #ident;
                    user(&account, &subject)
                }
            }
            #[cfg(target_arch = "wasm32")]
            #sdk::__private::export_mapper!(
                __NatriumMapper with_types_in #sdk::bindings::mapper
            );
        },
        Kind::Authorizer => quote_spanned! {span=>
            #[allow(dead_code)]
            struct __NatriumAuthorizer;
            impl #sdk::__private::AuthorizationGuest for __NatriumAuthorizer {
                fn authorize(request: #sdk::ConnectRequest) -> #sdk::Decision {
                    let user: fn(#sdk::ConnectRequest) -> #sdk::Decision = #ident;
                    user(request)
                }
            }
            #[cfg(target_arch = "wasm32")]
            #sdk::__private::export_authorizer!(
                __NatriumAuthorizer with_types_in #sdk::bindings::authorizer
            );
        },
    };
    Ok(quote! {
        // Natively nothing is exported, so the function would look unused.
        #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
        #func
        #[doc(hidden)]
        const _: () = {
            #glue
        };
    })
}

/// Parses the attribute's arguments; returns whether a mapper is deterministic.
fn parse_args(kind: Kind, attr: TokenStream2) -> syn::Result<bool> {
    let args = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut deterministic = false;
    for arg in args {
        match (&arg, kind) {
            (Meta::Path(p), Kind::Mapper) if p.is_ident("deterministic") => deterministic = true,
            (_, Kind::Mapper) => {
                return Err(syn::Error::new(
                    arg.span(),
                    "unknown argument: #[mapper] takes only `deterministic`",
                ))
            }
            _ => {
                return Err(syn::Error::new(
                    arg.span(),
                    format!("#[{}] takes no arguments", kind.name()),
                ))
            }
        }
    }
    Ok(deterministic)
}

/// Rejects what a plain function pointer cannot be, with a message better than the type error.
fn check_shape(kind: Kind, func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let fail = |span: Span, what: &str| {
        Err(syn::Error::new(
            span,
            format!(
                "#[{}] function cannot be {what}; expected {}",
                kind.name(),
                kind.expected()
            ),
        ))
    };
    if let Some(t) = &sig.asyncness {
        return fail(t.span(), "async");
    }
    if let Some(t) = &sig.unsafety {
        return fail(t.span(), "unsafe");
    }
    if let Some(t) = &sig.abi {
        return fail(t.span(), "extern");
    }
    // Lifetime parameters are fine (`fn f<'a>(account: &'a str, ..)` still coerces).
    if sig
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, syn::GenericParam::Lifetime(_)))
    {
        return fail(sig.generics.span(), "generic");
    }
    if let Some(v) = &sig.variadic {
        return fail(v.span(), "variadic");
    }
    Ok(())
}
