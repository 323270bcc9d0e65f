//! Content negotiation on `Accept` (RFC 9110 section 12.5.1): each offered media type
//! takes the quality of the most specific range that matches it (`type/subtype` over
//! `type/*` over `*/*`); types of quality 0 are refused.

/// A media type the server can answer, and the other names a client may ask it by.
pub struct Offer {
    pub media: &'static str,
    pub also: &'static [&'static str],
}

/// The offers the client accepts, best first (ties in the server's order). An `Accept`
/// header that cannot be parsed is an error.
///
/// ```
/// use gco_serve::negotiate::{Offer, rank};
/// let offers = [
///     Offer { media: "application/vc", also: &["application/json"] },
///     Offer { media: "application/vc+jwt", also: &[] },
/// ];
/// assert_eq!(rank("*/*", &offers).unwrap(), ["application/vc", "application/vc+jwt"]);
/// assert_eq!(rank("application/vc+jwt", &offers).unwrap(), ["application/vc+jwt"]);
/// assert_eq!(
///     rank("application/*;q=0.5, application/vc+jwt", &offers).unwrap(),
///     ["application/vc+jwt", "application/vc"]
/// );
/// assert_eq!(rank("application/json", &offers).unwrap(), ["application/vc"]);
/// assert!(rank("application/vc;q=0, application/vc+jwt;q=0", &offers).unwrap().is_empty());
/// assert!(rank("text/html", &offers).unwrap().is_empty());
/// assert!(rank("application/vc;q=2", &offers).is_err());
/// ```
pub fn rank(accept: &str, offers: &[Offer]) -> Result<Vec<&'static str>, String> {
    // (type, subtype, quality in thousandths)
    let mut ranges = Vec::new();
    for part in accept.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut fields = part.split(';').map(str::trim);
        let range = fields.next().unwrap_or_default().to_ascii_lowercase();
        let Some((ty, sub)) = range.split_once('/') else {
            return Err(format!("Accept: {part:?} is not a media range"));
        };
        let mut q = 1000u32;
        for param in fields {
            if let Some(v) = param
                .strip_prefix("q=")
                .or_else(|| param.strip_prefix("Q="))
            {
                q = quality(v).ok_or_else(|| format!("Accept: {param:?} is not a quality"))?;
            }
        }
        ranges.push((ty.to_string(), sub.to_string(), q));
    }
    let mut scored: Vec<(u32, usize, &'static str)> = Vec::new();
    for (at, offer) in offers.iter().enumerate() {
        let mut best: Option<(u8, u32)> = None;
        for name in std::iter::once(offer.media).chain(offer.also.iter().copied()) {
            let (ty, sub) = name.split_once('/').unwrap_or((name, ""));
            for (rt, rs, q) in &ranges {
                let specificity = match (rt.as_str(), rs.as_str()) {
                    (t, s) if t == ty && s == sub => 2,
                    (t, "*") if t == ty => 1,
                    ("*", "*") => 0,
                    _ => continue,
                };
                if best.is_none_or(|(s, bq)| specificity > s || (specificity == s && *q > bq)) {
                    best = Some((specificity, *q));
                }
            }
        }
        if let Some((_, q)) = best
            && q > 0
        {
            scored.push((q, at, offer.media));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(scored.into_iter().map(|(_, _, m)| m).collect())
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn quality(v: &str) -> Option<u32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u32>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}
