//! Intake adapters (issue 6): WeChat official account, citizen app API, web form. Each turns a
//! citizen's submission into the one `ticketing` intake; none writes ticket rows itself. Not built yet.
