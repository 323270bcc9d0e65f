//! gco.toml from arbitrary text: parse, validate and convert every figure. Never a
//! panic (an overflow in a conversion panics in this build), and no error message
//! carries a string from the file that could be a secret (see
//! `gco_fuzz::literals`): the file holds API keys and store credentials.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match gco_config::Config::parse("gco.toml", text) {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            for secret in gco_fuzz::literals(text) {
                assert!(
                    !message.contains(&secret),
                    "the error message echoes {secret:?}: {message}"
                );
            }
            return;
        }
    };
    if let Err(e) = config.validate() {
        // Validation never looks at credentials: none of them is in its message.
        let message = e.to_string();
        let p = &config.providers;
        let secrets = config.store_options.values().chain(
            [&p.watttime, &p.electricitymaps, &p.uk]
                .into_iter()
                .flat_map(|c| [&c.password, &c.api_key])
                .flatten(),
        );
        for s in secrets.filter(|s| s.len() >= 8) {
            assert!(!message.contains(s.as_str()), "{s:?} in {message}");
        }
        return;
    }
    // Validated: every figure converts.
    let pipeline = &config.pipeline;
    for site in pipeline.sites.keys().map(String::as_str).chain(["unnamed"]) {
        pipeline.site(site).expect("a validated site converts");
    }
    pipeline
        .instruments()
        .expect("validated instruments convert");
    for zone in pipeline.residual_mix.keys() {
        pipeline
            .residual_mg_per_kwh(zone)
            .expect("a validated residual mix converts");
    }
    for zone in config.report.energy_mix.keys() {
        config.report.mix(zone).expect("a validated mix converts");
    }
});
