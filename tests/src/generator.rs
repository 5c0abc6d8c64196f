//! A generator of varied, valid XMeld 25.11a messages for tests and benchmarks.
//!
//! [`Generator::message`] builds one message of a [`Kind`] for a tenant (an eight-digit AGS,
//! written as the `ags:` kennung of the reader or the author, whichever the tenant is in that
//! message type). Everything is drawn from a [`fastrand`] generator seeded in
//! [`Generator::new`]: the same seed and the same sequence of calls give byte-identical XML,
//! so a failing case is reproduced from its seed alone.
//!
//! What varies is what the XSD lets vary and real registers contain: one to
//! [`Generator::max_persons`] persons (0201 over one to three Umzugsverbände, 1704 as a
//! registering person with partner and children), birth dates known to the day, month or year
//! only or not at all, given names that are rightly missing (`nichtVorhanden`), earlier
//! dwellings abroad, withheld or unknown, Auskunftssperren and bedingte Sperrvermerke,
//! documents with and without serial number, issue date and blocking data, and names from
//! DIN 91379 (ß, Ø, ł, Vietnamese and Turkish letters, combining sequences such as `S̱` and
//! `r̥`, names with particles and apostrophes).
//!
//! The element order and cardinalities follow the XSDs in `schemas/xmeld-25.11a` (see the
//! structure notes in `docs/src/messages/`); the hand-written golden fixtures were the template
//! for what real messages fill in. The XInneres base schemas XMeld imports are not in the
//! repository, so validity is not checked here: `docs/src/benchmarks.md` says how generated
//! messages were validated with xmllint outside it.
//!
//! [`Generated`] reports what went in (persons, names, dates, blocks, the document, the
//! attachment), so a test can compare the adapter's records with it without parsing the XML.
//!
//! ```
//! use efile_bridge_tests::generator::{Generator, Kind};
//!
//! let message = Generator::new(7).message(Kind::Rueckmeldung0201, "09162000");
//! assert!(!message.persons.is_empty());
//! assert!(std::str::from_utf8(&message.xml).is_ok_and(|x| x.contains("<kennung>ags:09162000</kennung>")));
//! ```

use base64::Engine as _;
use time::{Date, Duration};

/// A message type the generator builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `rueckmeldung.anmeldunginland.0201`: the new municipality tells the tenant (the reader)
    /// who moved away; one or more Umzugsverbände, one `betroffener` per person.
    Rueckmeldung0201,
    /// `onlinedienste.anmeldung.meldeschein.1704`: an online Anmeldung from the portal to the
    /// tenant (the reader), with partner, children and the landlord's confirmation as PDF.
    Meldeschein1704,
    /// `fortschreibung.anschrift.0090`: the tenant (the author) records a move within the
    /// municipality or corrects an address; one person.
    Anschrift0090,
    /// `fortschreibung.dokument.0006`: the tenant (the author) enters a passport or ID card.
    Dokument0006,
    /// `fortschreibung.dokument.0064`: the tenant (the author) corrects a stored document.
    Dokument0064,
    /// `fortschreibung.dokument.0065`: the tenant (the author) deletes a stored document.
    Dokument0065,
}

impl Kind {
    /// Every kind the generator builds.
    pub const ALL: [Kind; 6] = [
        Kind::Rueckmeldung0201,
        Kind::Meldeschein1704,
        Kind::Anschrift0090,
        Kind::Dokument0006,
        Kind::Dokument0064,
        Kind::Dokument0065,
    ];

    /// The message type code (`nachrichtentyp/code`), e.g. `0201`.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Rueckmeldung0201 => "0201",
            Kind::Meldeschein1704 => "1704",
            Kind::Anschrift0090 => "0090",
            Kind::Dokument0006 => "0006",
            Kind::Dokument0064 => "0064",
            Kind::Dokument0065 => "0065",
        }
    }

    /// The root element's local name, e.g. `rueckmeldung.anmeldunginland.0201`.
    pub fn message_name(self) -> &'static str {
        match self {
            Kind::Rueckmeldung0201 => "rueckmeldung.anmeldunginland.0201",
            Kind::Meldeschein1704 => "onlinedienste.anmeldung.meldeschein.1704",
            Kind::Anschrift0090 => "fortschreibung.anschrift.0090",
            Kind::Dokument0006 => "fortschreibung.dokument.0006",
            Kind::Dokument0064 => "fortschreibung.dokument.0064",
            Kind::Dokument0065 => "fortschreibung.dokument.0065",
        }
    }

    /// Whether the tenant is the message's reader (`leser`); otherwise it is the author.
    pub fn tenant_is_reader(self) -> bool {
        matches!(self, Kind::Rueckmeldung0201 | Kind::Meldeschein1704)
    }

    /// The XSD that declares the message element (under `schemas/xmeld-25.11a/xsd/`).
    pub fn schema_file(self) -> &'static str {
        match self {
            Kind::Rueckmeldung0201 => "xmeld-nachrichten-rueckmeldung.xsd",
            Kind::Meldeschein1704 => "xmeld-nachrichten-onlinedienste.xsd",
            _ => "xmeld-nachrichten-fortschreibung.xsd",
        }
    }
}

/// A date that may be known only in part (`xida:TeilbekanntesDatumMitUnbekannt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialDate {
    /// Known to the day (`jahrMonatTag`).
    Day(Date),
    /// Only year and month are known (`jahrMonat`).
    Month(i32, u8),
    /// Only the year is known (`jahr`).
    Year(i32),
    /// Not known at all (`unbekannt`).
    Unknown,
}

impl PartialDate {
    /// The date as the record model writes a partly known date (`YYYY-MM-DD`, `YYYY-MM`,
    /// `YYYY`); `None` if it is unknown.
    pub fn partial(&self) -> Option<String> {
        match *self {
            PartialDate::Day(d) => Some(d.to_string()),
            PartialDate::Month(y, m) => Some(format!("{y:04}-{m:02}")),
            PartialDate::Year(y) => Some(format!("{y:04}")),
            PartialDate::Unknown => None,
        }
    }
}

/// A person as the generator put them into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Family name, exactly as written.
    pub family_name: String,
    /// Given names, exactly as written; `None` where the message says `nichtVorhanden`.
    pub given_names: Option<String>,
    /// Birth date.
    pub birth_date: PartialDate,
    /// Birth place, if the message names one.
    pub birth_place: Option<String>,
    /// Steuer-Identifikationsnummer (a test number: leading zero, valid check digit).
    pub id_nr: Option<String>,
    /// An Auskunftssperre (§ 51 BMG) is registered for the person (0201, 1704).
    pub auskunftssperre: bool,
    /// The person's new address carries a bedingter Sperrvermerk (§ 52 BMG) (0090).
    pub sperrvermerk: bool,
    /// The `ereignis.zeichen` that identifies the person's event (0201, 0090).
    pub ereignis_zeichen: Option<String>,
    /// The day the person moved into the new dwelling; `None` where the message says it is
    /// unknown or has no such date.
    pub moved_in: Option<String>,
}

/// A passport or ID document as the generator put it into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// `passart` code, e.g. `09` (Personalausweis).
    pub passart: String,
    /// Serial number, if given.
    pub seriennummer: Option<String>,
    /// Issue date, if given (never for an eID-Karte, passart `15`).
    pub ausgestellt: Option<String>,
    /// Last day of validity, if given.
    pub gueltig_bis: Option<String>,
    /// The revocation password, if given: it must never reach a record.
    pub sperrkennwort: Option<String>,
}

/// One generated message and what went into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The message type.
    pub kind: Kind,
    /// The message, UTF-8.
    pub xml: Vec<u8>,
    /// `nachrichtenUUID` (a random version-4 UUID drawn from the seed).
    pub uuid: String,
    /// `erstellungszeitpunkt`.
    pub created_at: String,
    /// The tenant's AGS.
    pub tenant: String,
    /// The other party's `kennung` (`ags:…`, or `mbp:…` for the portal of 1704).
    pub counterpart: String,
    /// Umzugsverbände (households) in a 0201; 1 otherwise.
    pub households: usize,
    /// The persons the message is about, in document order (the order of the adapter's records).
    pub persons: Vec<Person>,
    /// The document a 0006/0064/0065 is about (0064: as corrected).
    pub document: Option<Document>,
    /// The document before the correction (0064).
    pub document_before: Option<Document>,
    /// The landlord's confirmation (1704): the PDF the message carries in base64.
    pub attachment: Option<Vec<u8>>,
}

/// Builds varied, valid XMeld messages from a seed. See the module docs.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: fastrand::Rng,
    seed: u64,
    max_persons: usize,
    count: u64,
}

impl Generator {
    /// A generator for `seed`, with at most six persons per message.
    pub fn new(seed: u64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), seed, max_persons: 6, count: 0 }
    }

    /// At most `n` persons per message (at least one). Only 0201 and 1704 carry more than one.
    pub fn max_persons(mut self, n: usize) -> Self {
        self.max_persons = n.max(1);
        self
    }

    /// One message of `kind` for the tenant with AGS `tenant`.
    ///
    /// # Panics
    ///
    /// If `tenant` is not eight digits.
    pub fn message(&mut self, kind: Kind, tenant: &str) -> Generated {
        assert!(
            tenant.len() == 8 && tenant.bytes().all(|b| b.is_ascii_digit()),
            "tenant `{tenant}` is not an eight-digit AGS"
        );
        self.count += 1;
        let tenant = Municipality::of(tenant);
        let counterpart = self.counterpart(&tenant);
        let created = Stamp::draw(&mut self.rng);
        let uuid = self.uuid();
        let mut message = Message {
            kind,
            uuid: uuid.clone(),
            created,
            tenant,
            counterpart,
            households: 1,
            persons: Vec::new(),
            document: None,
            document_before: None,
            attachment: None,
        };
        let mut x = Xml::default();
        let comment = format!(
            "Generiert von efile_bridge_tests::generator (Seed {}, Nachricht {}): fiktive Daten",
            self.seed, self.count
        );
        match kind {
            Kind::Rueckmeldung0201 => self.rueckmeldung(&mut x, &comment, &mut message),
            Kind::Meldeschein1704 => self.meldeschein(&mut x, &comment, &mut message),
            Kind::Anschrift0090 => self.anschrift(&mut x, &comment, &mut message),
            Kind::Dokument0006 | Kind::Dokument0064 | Kind::Dokument0065 => {
                self.dokument(&mut x, &comment, &mut message);
            }
        }
        Generated {
            kind,
            xml: x.out.into_bytes(),
            uuid,
            created_at: message.created.text(),
            tenant: message.tenant.ags.clone(),
            counterpart: match kind {
                Kind::Meldeschein1704 => portal_kennung(&message.tenant),
                _ => format!("ags:{}", message.counterpart.ags),
            },
            households: message.households,
            persons: message.persons,
            document: message.document,
            document_before: message.document_before,
            attachment: message.attachment,
        }
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(..100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    /// How many persons a message carries: half of all messages are about one person, the
    /// rest spread evenly up to the limit, as registers see mostly single moves.
    fn person_count(&mut self) -> usize {
        if self.max_persons == 1 || self.chance(50) { 1 } else { self.rng.usize(2..=self.max_persons) }
    }

    fn uuid(&mut self) -> String {
        let mut b = self.rng.u128(..).to_be_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }

    fn counterpart(&mut self, tenant: &Municipality) -> Municipality {
        let others: Vec<_> = MUNICIPALITIES.iter().filter(|m| m.0 != tenant.ags).collect();
        Municipality::of(self.pick(&others).0)
    }

    fn address(&mut self, m: &Municipality) -> Address {
        let (strasse, plz) = self.pick(&m.streets).clone();
        Address {
            ags: m.ags.clone(),
            hausnummer: self.rng.u16(1..=240).to_string(),
            buchstabe: self.chance(10).then(|| self.pick(&["a", "b", "c"]).to_string()),
            plz,
            stockwerk: self.chance(40).then(|| self.pick(&["EG", "1OG", "2OG", "3OG", "DG", "HP"]).to_string()),
            strasse,
            wohnort: m.ort.clone(),
            zusatz: self.chance(10).then(|| self.pick(&["Hinterhaus", "Gartenhaus", "Seitenflügel"]).to_string()),
        }
    }

    fn birth(&mut self, years: std::ops::RangeInclusive<i32>) -> PartialDate {
        let year = self.rng.i32(years);
        match self.rng.u8(..100) {
            0..70 => PartialDate::Day(day_of(year, self.rng.u16(1..=365))),
            70..82 => PartialDate::Month(year, self.rng.u8(1..=12)),
            82..92 => PartialDate::Year(year),
            _ => PartialDate::Unknown,
        }
    }

    fn id_nr(&mut self) -> String {
        // Test IdNrs start with 0 (the BZSt test range), so they never name a real person.
        let mut digits = vec![0u8];
        digits.extend((0..9).map(|_| self.rng.u8(0..10)));
        digits.push(id_nr_check_digit(&digits));
        digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    fn serial(&mut self) -> String {
        const LETTERS: &[u8] = b"CFGHJKLMNPRTVWXYZ";
        const ALNUM: &[u8] = b"CFGHJKLMNPRTVWXYZ0123456789";
        let mut s = String::new();
        s.push(char::from(*self.pick(LETTERS)));
        s.extend((0..8).map(|_| char::from(*self.pick(ALNUM))));
        s
    }

    /// A household of `size` persons who move together: one or two adults, then children.
    fn household(&mut self, size: usize, with_id_nr: u8) -> Vec<Resident> {
        let origin = if self.chance(8) { &MONONYMS } else { self.pick(ORIGINS) };
        let family = self.pick(origin.family).to_string();
        let sperre = self.chance(12).then(|| Sperre { grund: if self.chance(80) { "3" } else { "11" }, frist: None });
        let married = size >= 2 && self.chance(75);
        let married_since = self.birth(1980..=2020);
        let mut members: Vec<Resident> = Vec::with_capacity(size);
        for n in 0..size {
            let adult = n == 0 || (n == 1 && married);
            let female = if n == 1 && married { !members[0].female } else { self.chance(50) };
            let given = origin.given(female).map(|names| self.pick(names).to_string());
            let mut family_name = family.clone();
            let mut geburtsname = None;
            if n == 1 && married && self.chance(30) {
                // Spouses may keep their own names, so a household need not share one.
                family_name = self.pick(origin.family).to_string();
            } else if n == 1 && married && self.chance(50) {
                let other = self.pick(origin.family).to_string();
                geburtsname = (other != family_name).then_some(other);
            }
            let birth = if adult { self.birth(1940..=2004) } else { self.birth(2008..=2024) };
            let foreign_born = origin.staat != "000" && (adult || self.chance(50));
            let birth_place = match (foreign_born, self.chance(85)) {
                (_, false) => None,
                (true, true) => Some(self.pick(origin.places).to_string()),
                (false, true) => Some(self.pick(DE_PLACES).to_string()),
            };
            let mut nationalities = vec![origin.staat];
            if origin.staat != "000" && self.chance(25) {
                nationalities.insert(0, "000");
            }
            let familienstand = match (adult, married) {
                (true, true) => Familienstand { code: "VH", since: Some(married_since) },
                (true, false) => {
                    let code = *self.pick(&["LD", "LD", "GS", "VW"]);
                    let since = (code != "LD").then(|| self.birth(1985..=2024));
                    Familienstand { code, since }
                }
                (false, _) => Familienstand { code: "LD", since: None },
            };
            let religion = if origin.staat == "000" { *self.pick(&["rk", "ev", "--"]) } else { "--" };
            let gebraeuchlich = given
                .as_deref()
                .filter(|g| g.contains(' ') && self.chance(40))
                .and_then(|g| g.split(' ').next())
                .map(str::to_owned);
            let id_nr = self.chance(with_id_nr).then(|| self.id_nr());
            let mut sperre = sperre.clone();
            if let Some(s) = &mut sperre
                && self.chance(50)
            {
                s.frist = Some(day_of(self.rng.i32(2026..=2029), self.rng.u16(1..=365)));
            }
            members.push(Resident {
                family_name,
                given_names: given,
                geburtsname,
                gebraeuchlich,
                female,
                birth,
                birth_place,
                birth_state: foreign_born.then_some(origin.staat),
                nationalities,
                familienstand,
                religion,
                sperre,
                id_nr,
                origin,
                adult,
            });
        }
        members
    }

    /// A passport or ID document for `r`, issued by `m`, or by the home state's authority
    /// for someone who is not German and so has no German document.
    fn ausweis(&mut self, r: &Resident, m: &Municipality, issued_before: Date) -> Doc {
        let foreign = !r.nationalities.contains(&"000");
        let passart = if foreign {
            "07"
        } else if r.adult {
            *self.pick(&["09", "09", "01", "15"])
        } else {
            "03"
        };
        let mut issued = issued_before - Duration::days(self.rng.i64(0..=3000));
        if let PartialDate::Day(born) = r.birth {
            issued = issued.max(born);
        }
        let years = if passart == "03" { 6 } else { 10 };
        let expiry =
            issued.replace_year(issued.year() + years).unwrap_or(issued + Duration::days(365 * 10)) - Duration::days(1);
        Doc {
            passart,
            gueltig_bis: Some(expiry),
            seriennummer: (!foreign || self.chance(70)).then(|| self.serial()),
            behoerde: if foreign { r.origin.authority.to_owned() } else { m.kurz.clone() },
            ausgestellt: (passart != "15").then_some(issued),
            sperrsumme: None,
            sperrkennwort: None,
        }
    }

    fn rueckmeldung(&mut self, x: &mut Xml, comment: &str, msg: &mut Message) {
        let total = self.person_count();
        let households = total.min(self.rng.usize(1..=3));
        let mut sizes = vec![1; households];
        for _ in households..total {
            let i = self.rng.usize(..households);
            sizes[i] += 1;
        }
        let year = msg.created.date.year();
        let serial = self.rng.u32(1..1_000_000);
        let reader = Party::office(&msg.tenant);
        let author = Party::office(&msg.counterpart);
        let with_reader_address = self.chance(50);
        header(x, comment, msg, &reader, &author, with_reader_address);
        let mut index = 0;
        for size in sizes {
            let members = self.household(size, 85);
            let new = self.address(&msg.counterpart);
            let old = self.address(&msg.tenant);
            let moved_in = msg.created.date - Duration::days(self.rng.i64(1..=21));
            let moved_in_known = self.chance(90);
            let moved_out = moved_in - Duration::days(self.rng.i64(0..=2));
            let lived_since = self.chance(85).then(|| moved_in - Duration::days(self.rng.i64(200..=6000)));
            let earlier = self.earlier_dwelling(&members[0]);
            let documents: Vec<Option<Doc>> =
                members.iter().map(|r| self.chance(60).then(|| self.ausweis(r, &msg.tenant, moved_in))).collect();
            let event = msg.created.before(&mut self.rng);
            x.el("xmeld:umzugsverband", |x| {
                for (r, doc) in members.iter().zip(&documents) {
                    index += 1;
                    let zeichen = format!("ANM-{year}-{serial:06}-{index}");
                    x.el("xmeld:betroffener", |x| {
                        x.el("xmeld:identifikation.betroffener", |x| {
                            name_block(x, "xmeld:name", r);
                            geburt(x, "xmeld:geburt", r);
                            wohnung_inland(x, "xmeld:wohnung.autor", &new, "0");
                            wohnung_inland(x, "xmeld:wohnung.leser", &old, "0");
                        });
                        x.el("xmeld:zuzugsperson", |x| {
                            if let Some(s) = &r.sperre {
                                sperre(x, "xmeld:AUSKUNFTSSPERRE", s);
                            }
                            name_block(x, "xmeld:NAMENATUERLICHEPERSON", r);
                            familienstand(x, "xmeld:FAMILIENSTAND", &r.familienstand);
                            geburt(x, "xmeld:GEBURT", r);
                            x.el("xmeld:RELIGION", |x| x.code("xmeld:religion.steuer.erhebend", Some("1"), r.religion));
                            for s in &r.nationalities {
                                x.code("xmeld:STAATSANGEHOERIGKEIT", Some(GEBIET_LIST), s);
                            }
                            if let Some(d) = doc {
                                ausweisdokument(x, "xmeld:AUSWEISDOKUMENT", d);
                            }
                            x.el("xmeld:WOHNUNG", |x| {
                                anschrift_inland_doubled(x, &new);
                                tagesdatum_oder_unbekannt(
                                    x,
                                    "xmeld:datumDesBeziehens",
                                    moved_in_known.then_some(moved_in),
                                );
                                x.code("xmeld:statusderwohnung", None, "0");
                            });
                            x.el("xmeld:WOHNUNG", |x| {
                                anschrift_inland_doubled(x, &old);
                                teilbekanntes_datum(x, "xmeld:datumDesAuszugs", &PartialDate::Day(moved_out));
                                tagesdatum_oder_unbekannt(x, "xmeld:datumDesBeziehens", lived_since);
                                x.code("xmeld:statusderwohnung", None, "0");
                            });
                            if let Some(e) = &earlier {
                                x.el("xmeld:WOHNUNG", |x| {
                                    x.el("xmeld:anschrift", |x| e.render(x));
                                    teilbekanntes_datum(x, "xmeld:datumDesAuszugs", &e.moved_out);
                                });
                            }
                            x.code("xmeld:GESCHLECHT", Some("1"), if r.female { "w" } else { "m" });
                            if let Some(id) = &r.id_nr {
                                x.leaf("xmeld:idNr", id);
                            }
                        });
                        x.el("xmeld:identifikation.ereignis", |x| {
                            x.leaf("ereignis.zeitpunkt", &event);
                            x.leaf("ereignis.zeichen", &zeichen);
                        });
                    });
                    msg.persons.push(Person {
                        ereignis_zeichen: Some(zeichen),
                        moved_in: moved_in_known.then(|| moved_in.to_string()),
                        ..r.person()
                    });
                }
            });
        }
        msg.households = households;
        x.close(&format!("xmeld:{}", msg.kind.message_name()));
    }

    /// Where the household lived before the dwelling it now leaves, if the register knows:
    /// abroad (state given or rightly withheld) or unknown.
    fn earlier_dwelling(&mut self, head: &Resident) -> Option<Earlier> {
        let place = match self.rng.u8(..100) {
            0..30 => {
                let staat = if head.origin.staat == "000" { *self.pick(FOREIGN_STATES) } else { head.origin.staat };
                EarlierPlace::Abroad(staat)
            }
            30..40 => EarlierPlace::Withheld,
            40..55 => EarlierPlace::Unknown(self.chance(70).then(|| *self.pick(&["0", "1", "2"]))),
            _ => return None,
        };
        let year = self.rng.i32(2000..=2024);
        let moved_out = match self.rng.u8(..3) {
            0 => PartialDate::Month(year, self.rng.u8(1..=12)),
            1 => PartialDate::Year(year),
            _ => PartialDate::Unknown,
        };
        Some(Earlier { place, moved_out })
    }

    fn meldeschein(&mut self, x: &mut Xml, comment: &str, msg: &mut Message) {
        let total = self.person_count();
        let members = self.household(total, 90);
        // The first two adults of a household are the registering person and the partner.
        let with_partner = members.len() >= 2 && members[1].adult;
        let previous = self.address(&msg.counterpart);
        let new = self.address(&msg.tenant);
        let moved_in = msg.created.date - Duration::days(self.rng.i64(0..=13));
        let moved_out = self.chance(30).then(|| moved_in - Duration::days(self.rng.i64(1..=5)));
        let status_neu = if self.chance(85) { "0" } else { "1" };
        let reader = Party::office(&msg.tenant);
        let author = Party::portal(&msg.tenant);
        let with_reader_address = self.chance(60);
        let from_eid = self.chance(60);
        header(x, comment, msg, &reader, &author, with_reader_address);
        let head = &members[0];
        x.el("xmeld:identifikation", |x| {
            x.el("xmeld:familienname.unstrukturiert", |x| x.leaf("name", &head.family_name));
            allgemeiner_name(x, "xmeld:vornamen", head.given_names.as_deref());
            x.el("xmeld:geburt", |x| teilbekanntes_datum(x, "xmeld:geburtsdatum", &head.birth));
            x.el("xmeld:anschrift", |x| {
                x.code("xmeld:gemeindeschluessel", Some(AGS_LIST), &previous.ags);
                x.leaf("xmeld:postleitzahl", &previous.plz);
                x.el("xmeld:strasseUndHausnummer", |x| {
                    // As read from the eID chip (one line) or as typed in (structured).
                    if from_eid {
                        x.leaf("xmeld:konkateniert", &format!("{} {}", previous.strasse, previous.hausnummer));
                    } else {
                        x.el("xmeld:strukturiert", |x| {
                            x.leaf("hausnummer", &previous.hausnummer);
                            x.leaf("strasse", &previous.strasse);
                        });
                    }
                });
            });
        });
        let mut plans = Vec::with_capacity(members.len());
        for (n, r) in members.iter().enumerate() {
            let lived_since = self.chance(85).then(|| moved_in - Duration::days(self.rng.i64(200..=6000)));
            let sperrvermerk_alt = self.chance(5);
            let zuzug_bund = (r.origin.staat != "000").then(|| moved_in - Duration::days(self.rng.i64(400..=9000)));
            let doc = self.chance(70).then(|| self.ausweis(r, &msg.counterpart, moved_in));
            let widersprueche: Vec<&str> =
                ["2", "5", "7", "10", "13"].into_iter().filter(|_| self.chance(15)).collect();
            let nur_partner = n >= 2 && with_partner && self.chance(15);
            plans.push(Meldeschein { lived_since, sperrvermerk_alt, zuzug_bund, doc, widersprueche, nur_partner });
        }
        let personendaten = |x: &mut Xml, element: &str, r: &Resident, p: &Meldeschein| {
            x.el(element, |x| {
                x.el("xmeld:bestaetigteMeldedaten", |x| {
                    x.el("xmeld:personendaten", |x| {
                        name_block(x, "xmeld:name", r);
                        geburt(x, "xmeld:geburtsangaben", r);
                        x.code("xmeld:geschlecht", Some("1"), if r.female { "w" } else { "m" });
                        for s in &r.nationalities {
                            x.code("xmeld:staatsangehoerigkeit", Some(GEBIET_LIST), s);
                        }
                        x.el("xmeld:religionszugehoerigkeit", |x| {
                            x.code("xmeld:religion.steuer.erhebend", Some("1"), r.religion);
                        });
                        x.el("xmeld:wohnung", |x| {
                            x.el("xmeld:anschrift", |x| {
                                x.el("xmeld:anschrift.inland", |x| inland_fields(x, &previous));
                                if p.sperrvermerk_alt {
                                    x.leaf("xmeld:bedingterSperrvermerk", "true");
                                }
                            });
                            tagesdatum_oder_unbekannt(x, "xmeld:datumDesBeziehens", p.lived_since);
                            x.code("xmeld:statusderwohnung", None, "0");
                        });
                        if let Some(d) = p.zuzug_bund {
                            x.leaf("xmeld:zuzugBund", &d.to_string());
                        }
                        familienstand(x, "xmeld:familienstand", &r.familienstand);
                        if let Some(d) = &p.doc {
                            ausweisdokument(x, "xmeld:ausweisdokument", d);
                        }
                        if let Some(s) = &r.sperre {
                            sperre(x, "xmeld:auskunftssperre", s);
                        }
                        if let Some(id) = &r.id_nr {
                            x.leaf("xmeld:idNr", id);
                        }
                    });
                });
                if !p.widersprueche.is_empty() {
                    x.el("xmeld:widerspruecheUebermittlungssperren", |x| {
                        for w in &p.widersprueche {
                            x.code("xmeld:eintragung", None, w);
                        }
                    });
                }
                x.code("xmeld:statusDerNeuenWohnung", None, status_neu);
                if p.nur_partner {
                    x.leaf("xmeld:nurPartnerZugeordnet", "true");
                }
            });
        };
        personendaten(x, "xmeld:berechtigtePerson", head, &plans[0]);
        if members.len() > 1 {
            x.el("xmeld:weitereMitzuziehendePerson", |x| {
                for (n, (r, p)) in members.iter().zip(&plans).enumerate().skip(1) {
                    if n == 1 && with_partner {
                        x.el("xmeld:partner", |x| {
                            x.code("xmeld:partnerschaftstyp", None, "EG");
                            personendaten(x, "xmeld:personendaten", r, p);
                        });
                    } else {
                        personendaten(x, "xmeld:kind", r, p);
                    }
                }
            });
        }
        let landlord = format!("Hausverwaltung {} GmbH", self.pick(DE_ORIGIN.family));
        let office = self.address(&msg.tenant);
        let owner = self.chance(20).then(|| format!("Erbengemeinschaft {}", self.pick(DE_ORIGIN.family)));
        let pdf = self.chance(85).then(|| landlord_pdf(&msg.uuid, &moved_in.to_string()));
        let freitext = self.chance(30);
        x.el("xmeld:ergaenzendeMeldedaten", |x| {
            x.el("xmeld:wohnungsgeber", |x| {
                x.el("xmeld:wohnungsgeberNameAnschrift", |x| {
                    let lines = [
                        landlord.clone(),
                        format!("{} {}", office.strasse, office.hausnummer),
                        format!("{} {}", office.plz, office.wohnort),
                    ];
                    for (n, line) in lines.iter().enumerate() {
                        x.el("xmeld:zeile", |x| {
                            x.leaf("xmeld:position", &(n + 1).to_string());
                            x.leaf("xmeld:inhalt", line);
                        });
                    }
                });
                if let Some(o) = &owner {
                    x.leaf("xmeld:eigentuemerNichtWohnungsgeber", o);
                }
            });
            x.el("xmeld:wohnung", |x| {
                x.el("xmeld:anschrift", |x| inland_fields(x, &new));
                x.leaf("xmeld:datumDesBeziehens", &moved_in.to_string());
            });
            if let Some(d) = moved_out {
                x.leaf("xmeld:datumDesAuszugs", &d.to_string());
            }
            if let Some(pdf) = &pdf {
                x.leaf("xmeld:wohnungsgeberbestaetigung", &base64_lines(pdf));
            }
        });
        if freitext {
            x.leaf("xmeld:freitext", "Rückfragen bitte über das Postfach im Nutzerkonto.");
        }
        x.close(&format!("xmeld:{}", msg.kind.message_name()));
        msg.persons = members.iter().map(|r| Person { moved_in: Some(moved_in.to_string()), ..r.person() }).collect();
        msg.attachment = pdf;
    }

    fn anschrift(&mut self, x: &mut Xml, comment: &str, msg: &mut Message) {
        let r = self.household(1, 0).remove(0).without_sperre();
        let correction = self.chance(25);
        let alt = self.address(&msg.tenant);
        let neu = if correction {
            // A correction keeps the dwelling and fixes a detail of the address.
            Address { hausnummer: self.rng.u16(1..=240).to_string(), ..alt.clone() }
        } else {
            self.address(&msg.tenant)
        };
        let (sperrvermerk_alt, sperrvermerk_neu) = (self.chance(15), self.chance(15));
        let leser = self.address(&msg.counterpart);
        let zeichen = format!("UMM-{}-{:06}", msg.created.date.year(), self.rng.u32(1..1_000_000));
        let event = msg.created.before(&mut self.rng);
        let reader = Party::office(&msg.counterpart);
        let author = Party::office(&msg.tenant);
        let with_reader_address = self.chance(70);
        header(x, comment, msg, &reader, &author, with_reader_address);
        x.el("xmeld:identifikation.betroffenePerson", |x| {
            name_block(x, "xmeld:name", &r);
            geburt(x, "xmeld:geburt", &r);
            wohnung_inland(x, "xmeld:wohnung.autor", &neu, "0");
            wohnung_inland(x, "xmeld:wohnung.leser", &leser, "0");
        });
        x.code("xmeld:anlass", None, if correction { "17" } else { "3" });
        for (element, address, sperrvermerk) in
            [("xmeld:anschrift.alt", &alt, sperrvermerk_alt), ("xmeld:anschrift.neu", &neu, sperrvermerk_neu)]
        {
            x.el(element, |x| {
                x.el("xmeld:anschrift.inland", |x| inland_fields(x, address));
                if sperrvermerk {
                    x.leaf("xmeld:bedingterSperrvermerk", "true");
                }
            });
        }
        x.el("xmeld:identifikation.ereignis", |x| {
            x.leaf("ereignis.zeitpunkt", &event);
            x.leaf("ereignis.zeichen", &zeichen);
        });
        x.close(&format!("xmeld:{}", msg.kind.message_name()));
        msg.persons.push(Person { sperrvermerk: sperrvermerk_neu, ereignis_zeichen: Some(zeichen), ..r.person() });
    }

    fn dokument(&mut self, x: &mut Xml, comment: &str, msg: &mut Message) {
        let r = self.household(1, 0).remove(0).without_sperre();
        let autor = self.address(&msg.tenant);
        let leser = self.address(&msg.counterpart);
        let today = msg.created.date;
        // A new document is entered within days of its issue; a deletion or correction
        // concerns one that is still valid (expired documents are not deleted by message).
        let issued_by = match msg.kind {
            Kind::Dokument0006 => today - Duration::days(self.rng.i64(0..=10)),
            _ => today - Duration::days(self.rng.i64(30..=300)),
        };
        let mut doc = self.ausweis(&r, &msg.tenant, issued_by);
        if matches!(doc.passart, "09" | "15") && self.chance(40) {
            const HEX: &[u8] = b"0123456789ABCDEF";
            const WORD: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
            doc.sperrsumme = Some((0..16).map(|_| char::from(*self.pick(HEX))).collect());
            doc.sperrkennwort = Some((0..8).map(|_| char::from(*self.pick(WORD))).collect());
        }
        let before = (msg.kind == Kind::Dokument0064).then(|| {
            let old = doc.clone();
            match doc.seriennummer.clone() {
                // A mistyped serial number: the register had one character wrong.
                Some(serial) if self.chance(50) => {
                    let mut wrong: Vec<char> = serial.chars().collect();
                    let at = self.rng.usize(1..wrong.len());
                    wrong[at] = if wrong[at] == '7' { '1' } else { '7' };
                    Doc { seriennummer: Some(wrong.into_iter().collect()), ..old }
                }
                // An extension (foreign documents) or a corrected expiry date.
                _ => {
                    let longer = self.rng.i64(180..=1800);
                    doc.gueltig_bis = doc.gueltig_bis.map(|d| d + Duration::days(longer));
                    old
                }
            }
        });
        let reader = Party::office(&msg.counterpart);
        let author = Party::office(&msg.tenant);
        let with_reader_address = self.chance(50);
        header(x, comment, msg, &reader, &author, with_reader_address);
        x.el("xmeld:betroffener", |x| {
            name_block(x, "xmeld:name", &r);
            geburt(x, "xmeld:geburt", &r);
            wohnung_inland(x, "xmeld:wohnung.autor", &autor, "1");
            wohnung_inland(x, "xmeld:wohnung.leser", &leser, "2");
        });
        match (msg.kind, &before) {
            (Kind::Dokument0064, Some(old)) => {
                ausweisdokument(x, "xmeld:personaldokument.alt", old);
                ausweisdokument(x, "xmeld:personaldokument.neu", &doc);
            }
            (Kind::Dokument0065, _) => ausweisdokument(x, "xmeld:personaldokument", &doc),
            _ => ausweisdokument(x, "xmeld:ausweisdokument", &doc),
        }
        x.close(&format!("xmeld:{}", msg.kind.message_name()));
        msg.persons.push(r.person());
        msg.document = Some(doc.facts());
        msg.document_before = before.map(|d| d.facts());
    }
}

/// The eleventh digit of an IdNr from the first ten, by the algorithm in the XInneres
/// `Identifikationsnummer` documentation (ISO 7064, MOD 11,10).
fn id_nr_check_digit(first_ten: &[u8]) -> u8 {
    let mut m11 = 10u8;
    for &c in first_ten {
        let mut m10 = (c + m11) % 10;
        if m10 == 0 {
            m10 = 10;
        }
        m11 = (2 * m10) % 11;
    }
    if m11 == 1 { 0 } else { 11 - m11 }
}

/// The message being built.
struct Message {
    kind: Kind,
    uuid: String,
    created: Stamp,
    tenant: Municipality,
    counterpart: Municipality,
    households: usize,
    persons: Vec<Person>,
    document: Option<Document>,
    document_before: Option<Document>,
    attachment: Option<Vec<u8>>,
}

/// A point in time as XMeld writes it: milliseconds and the German zone offset.
struct Stamp {
    date: Date,
    seconds: u32,
    millis: u16,
}

impl Stamp {
    /// A working-hours time on a day of 2026.
    fn draw(rng: &mut fastrand::Rng) -> Self {
        Self { date: day_of(2026, rng.u16(5..=355)), seconds: rng.u32(8 * 3600..18 * 3600), millis: rng.u16(..1000) }
    }

    fn text(&self) -> String {
        Self::format(self.date, self.seconds, self.millis)
    }

    /// A time earlier the same day: when the event was stored, before the message was made.
    fn before(&self, rng: &mut fastrand::Rng) -> String {
        Self::format(self.date, self.seconds - rng.u32(10..3600), rng.u16(..1000))
    }

    fn format(date: Date, seconds: u32, millis: u16) -> String {
        // Summer time roughly April to October; xs:dateTime only needs some offset.
        let offset = if (4..=10).contains(&u8::from(date.month())) { "+02:00" } else { "+01:00" };
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        format!("{date}T{h:02}:{m:02}:{s:02}.{millis:03}{offset}")
    }
}

fn day_of(year: i32, ordinal: u16) -> Date {
    // Ordinal 1..=365 exists in every year, so this never falls back.
    Date::from_ordinal_date(year, ordinal).unwrap_or(Date::MIN)
}

/// Where names, birth places, nationality and foreign authorities come from, so that a
/// person's data fit together.
struct Origin {
    /// Destatis state code (the codes the fixtures use; the XSD does not restrict them).
    staat: &'static str,
    places: &'static [&'static str],
    family: &'static [&'static str],
    female: &'static [&'static str],
    male: &'static [&'static str],
    /// Who issues this nationality's passports.
    authority: &'static str,
}

impl Origin {
    /// Given names for the gender, or `None` where this naming tradition has none (block names).
    fn given(&self, female: bool) -> Option<&'static [&'static str]> {
        let names = if female { self.female } else { self.male };
        (!names.is_empty()).then_some(names)
    }
}

const DE_PLACES: &[&str] = &["München", "Nürnberg", "Würzburg", "Görlitz", "Lüdenscheid", "Passau", "Weißenfels"];

const DE_ORIGIN: Origin = Origin {
    staat: "000",
    places: DE_PLACES,
    family: &[
        "Brandl",
        "Müller-Lüdenscheidt",
        "Straßer",
        "von der Heydt",
        "zu Löwenstein",
        "Gößwein",
        "Weiß",
        "Pfaffinger",
    ],
    female: &["Katharina Maria", "Anneliese Gertrud", "Zoë", "Hannelore", "Jana Sophie"],
    male: &["Jonas Maximilian", "Jürgen", "Lukas", "Günther Karl", "Matthias"],
    authority: "",
};

/// Indonesian mononyms: the person has no given name, which the message says with
/// `nichtVorhanden`.
const MONONYMS: Origin = Origin {
    staat: "437",
    places: &["Yogyakarta", "Surabaya"],
    family: &["Suharti", "Wiratmaja", "Mulyani"],
    female: &[],
    male: &[],
    authority: "Kantor Imigrasi Yogyakarta",
};

const ORIGINS: &[Origin] = &[
    DE_ORIGIN,
    DE_ORIGIN,
    DE_ORIGIN,
    Origin {
        staat: "126",
        places: &["København", "Ærøskøbing"],
        family: &["Østergård", "Søndergaard", "Kjær"],
        female: &["Mette", "Sørine"],
        male: &["Søren", "Bjørn Elias"],
        authority: "Københavns Kommune",
    },
    Origin {
        staat: "152",
        places: &["Łódź", "Gdańsk", "Kraków"],
        family: &["Łukaszewicz", "Kołodziej", "Wójcik"],
        female: &["Małgorzata", "Zofia Anna"],
        male: &["Łukasz", "Paweł Wojciech"],
        authority: "Prezydent Miasta Łodzi",
    },
    Origin {
        staat: "475",
        places: &["Ḥalab", "Dimašq"],
        family: &["Ḥaddād", "al-Ḫaṭīb"],
        female: &["Rania", "Nūr"],
        // `S̱` is S + U+0331, one of DIN 91379's combining sequences.
        male: &["S\u{331}ālim", "Ḫalīl"],
        authority: "Embassy of the Syrian Arab Republic, Berlin",
    },
    Origin {
        staat: "161",
        places: &["Sevilla", "A Coruña"],
        family: &["de la Cruz", "Peña Ibáñez"],
        female: &["María José", "Begoña"],
        male: &["Joaquín", "Íñigo"],
        authority: "Dirección General de la Policía",
    },
    Origin {
        staat: "148",
        places: &["Utrecht", "’s-Hertogenbosch"],
        family: &["van den Berg", "de Vries"],
        female: &["Sanne", "Eline"],
        male: &["Daan", "Sjoerd"],
        authority: "Gemeente Utrecht",
    },
    Origin {
        staat: "163",
        places: &["İzmir", "Eskişehir"],
        family: &["Çelik", "Şahin", "Yıldız", "Öztürk"],
        female: &["Ayşe", "Gülşen"],
        male: &["Oğuz", "Şükrü"],
        authority: "T.C. İçişleri Bakanlığı",
    },
    Origin {
        staat: "432",
        places: &["Hà Nội", "Huế"],
        family: &["Nguyễn", "Trần", "Phạm"],
        female: &["Thị Ánh", "Thị Hương"],
        male: &["Văn Đức", "Quốc Bảo"],
        authority: "Cục Quản lý xuất nhập cảnh",
    },
    Origin {
        staat: "164",
        places: &["Brno", "České Budějovice"],
        family: &["Dvořák", "Procházka"],
        female: &["Anežka", "Jiřina"],
        male: &["Jiří", "Tomáš"],
        authority: "Magistrát města Brna",
    },
    Origin {
        staat: "170",
        places: &["Beograd", "Niš"],
        family: &["Đorđević", "Petrović"],
        female: &["Milica", "Jelena"],
        male: &["Đorđe", "Dušan"],
        authority: "MUP Republike Srbije",
    },
    Origin {
        staat: "436",
        places: &["Chennai", "Bengaluru"],
        // `r̥` is r + U+0325, one of DIN 91379's combining sequences.
        family: &["Kr\u{325}ṣṇamūrti", "Subramaṇyam"],
        female: &["Kr\u{325}ṣṇā", "Lakṣmī"],
        male: &["Ānand", "Rāmacandra"],
        authority: "Passport Office Chennai",
    },
    Origin {
        staat: "137",
        places: &["Torino", "Forlì"],
        family: &["Ferraro", "D’Angelo"],
        female: &["Giulia", "Chiara"],
        male: &["Niccolò", "Francesco"],
        authority: "Comune di Torino",
    },
    Origin {
        staat: "135",
        places: &["Cork", "Dún Laoghaire"],
        family: &["O’Connor", "Ó Súilleabháin"],
        female: &["Siobhán", "Aoife"],
        male: &["Seán", "Ciarán"],
        authority: "Passport Office Dublin",
    },
];

/// States of earlier dwellings abroad for people born in Germany.
const FOREIGN_STATES: &[&str] = &["126", "129", "137", "148", "152", "158", "161", "163"];

/// `listVersionID` of the AGS code list (as in the fixtures; not checked by the schema).
const AGS_LIST: &str = "2025-01-31";
/// `listVersionID` of the Destatis state list.
const GEBIET_LIST: &str = "2025-01-31";

/// AGS, place, registration office, short authority name, office street, number and
/// postcode, streets with postcodes.
type MunicipalityRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    (&'static str, &'static str, &'static str),
    &'static [(&'static str, &'static str)],
);

const MUNICIPALITIES: &[MunicipalityRow] = &[
    (
        "09162000",
        "München",
        "Landeshauptstadt München, Kreisverwaltungsreferat, Bürgerbüro",
        "Landeshauptstadt München",
        ("Ruppertstraße", "19", "80337"),
        &[
            ("Schleißheimer Straße", "80797"),
            ("Leopoldstraße", "80802"),
            ("Landsberger Straße", "80687"),
            ("Hanauer Straße", "80992"),
            ("Grünwalder Straße", "81547"),
            ("Westendstraße", "81377"),
        ],
    ),
    (
        "06412000",
        "Frankfurt am Main",
        "Stadt Frankfurt am Main, Bürgeramt",
        "Stadt Frankfurt am Main",
        ("Zeil", "3", "60313"),
        &[
            ("Berger Straße", "60316"),
            ("Gräfstraße", "60486"),
            ("Schweizer Straße", "60594"),
            ("Eschersheimer Landstraße", "60322"),
        ],
    ),
    (
        "09761000",
        "Augsburg",
        "Stadt Augsburg, Bürgeramt",
        "Stadt Augsburg",
        ("An der Blauen Kappe", "12", "86150"),
        &[("Jakoberstraße", "86153"), ("Haunstetter Straße", "86161"), ("Maximilianstraße", "86150")],
    ),
    (
        "09362000",
        "Regensburg",
        "Stadt Regensburg, Einwohnermeldeamt",
        "Stadt Regensburg",
        ("D.-Martin-Luther-Straße", "4", "93047"),
        &[("Kumpfmühler Straße", "93051"), ("Prüfeninger Straße", "93049")],
    ),
    (
        "09564000",
        "Nürnberg",
        "Stadt Nürnberg, Einwohneramt",
        "Stadt Nürnberg",
        ("Äußere Laufer Gasse", "25", "90403"),
        &[("Gibitzenhofstraße", "90443"), ("Fürther Straße", "90429")],
    ),
    (
        "11000000",
        "Berlin",
        "Landesamt für Bürger- und Ordnungsangelegenheiten",
        "Land Berlin",
        ("Friedrichstraße", "219", "10969"),
        &[("Schönhauser Allee", "10435"), ("Karl-Marx-Allee", "10243"), ("Sonnenallee", "12059")],
    ),
    (
        "05315000",
        "Köln",
        "Stadt Köln, Kundenzentrum",
        "Stadt Köln",
        ("Willy-Brandt-Platz", "2", "50679"),
        &[("Venloer Straße", "50672"), ("Aachener Straße", "50674")],
    ),
    (
        "14612000",
        "Dresden",
        "Landeshauptstadt Dresden, Bürgerbüro",
        "Landeshauptstadt Dresden",
        ("Theaterstraße", "11", "01067"),
        &[("Königsbrücker Straße", "01099"), ("Bautzner Straße", "01099")],
    ),
];

/// A municipality with its registration office and some streets.
#[derive(Debug, Clone)]
struct Municipality {
    ags: String,
    ort: String,
    amt: String,
    kurz: String,
    office: (String, String, String),
    streets: Vec<(String, String)>,
}

impl Municipality {
    /// The municipality with this AGS: a known one from the table, or a made-up one, so any
    /// tenant AGS gets consistent addresses.
    fn of(ags: &str) -> Self {
        if let Some((ags, ort, amt, kurz, (s, n, p), streets)) = MUNICIPALITIES.iter().find(|m| m.0 == ags) {
            return Self {
                ags: (*ags).to_owned(),
                ort: (*ort).to_owned(),
                amt: (*amt).to_owned(),
                kurz: (*kurz).to_owned(),
                office: ((*s).to_owned(), (*n).to_owned(), (*p).to_owned()),
                streets: streets.iter().map(|(s, p)| ((*s).to_owned(), (*p).to_owned())).collect(),
            };
        }
        let number: u32 = ags.parse().unwrap_or_default();
        let plz = format!("{:05}", 10_000 + number % 89_999);
        let ort = format!("Gemeinde {ags}");
        Self {
            ags: ags.to_owned(),
            amt: format!("{ort}, Meldebehörde"),
            kurz: ort.clone(),
            office: ("Rathausplatz".to_owned(), "1".to_owned(), plz.clone()),
            streets: ["Hauptstraße", "Bahnhofstraße", "Am Anger", "Lindenallee"]
                .iter()
                .map(|s| ((*s).to_owned(), plz.clone()))
                .collect(),
            ort,
        }
    }
}

/// The portal's DVDV kennung for the tenant's Land (fictitious organisation id, as in the
/// fixtures).
fn portal_kennung(tenant: &Municipality) -> String {
    format!("mbp:{}000009", &tenant.ags[..2])
}

/// A header party (`leser`/`autor`) with its postal address.
struct Party {
    kennung: String,
    name: String,
    /// The `anschrift.*` block: a building or, for the portal, a PO box.
    postal: Postal,
}

enum Postal {
    Building { strasse: String, hausnummer: String, plz: String, ort: String },
    Postfach { postfach: String, plz: String, ort: String },
}

impl Party {
    fn office(m: &Municipality) -> Self {
        Self {
            kennung: format!("ags:{}", m.ags),
            name: m.amt.clone(),
            postal: Postal::Building {
                strasse: m.office.0.clone(),
                hausnummer: m.office.1.clone(),
                plz: m.office.2.clone(),
                ort: m.ort.clone(),
            },
        }
    }

    fn portal(tenant: &Municipality) -> Self {
        Self {
            kennung: portal_kennung(tenant),
            name: "Verwaltungsportal, Meldebehördenportal (Testinstanz)".to_owned(),
            postal: Postal::Postfach {
                postfach: "22 00 12".to_owned(),
                plz: tenant.office.2.clone(),
                ort: tenant.ort.clone(),
            },
        }
    }
}

/// An inland address (`xmeld:type.AnschriftMelderecht.Inland`).
#[derive(Debug, Clone)]
struct Address {
    ags: String,
    hausnummer: String,
    buchstabe: Option<String>,
    plz: String,
    stockwerk: Option<String>,
    strasse: String,
    wohnort: String,
    zusatz: Option<String>,
}

#[derive(Debug, Clone)]
struct Sperre {
    grund: &'static str,
    frist: Option<Date>,
}

struct Familienstand {
    code: &'static str,
    since: Option<PartialDate>,
}

/// A person with everything the message says about them.
struct Resident {
    family_name: String,
    given_names: Option<String>,
    geburtsname: Option<String>,
    gebraeuchlich: Option<String>,
    female: bool,
    birth: PartialDate,
    birth_place: Option<String>,
    birth_state: Option<&'static str>,
    nationalities: Vec<&'static str>,
    familienstand: Familienstand,
    religion: &'static str,
    sperre: Option<Sperre>,
    id_nr: Option<String>,
    origin: &'static Origin,
    adult: bool,
}

impl Resident {
    /// 0090 and the document messages carry no Auskunftssperre.
    fn without_sperre(mut self) -> Self {
        self.sperre = None;
        self.id_nr = None;
        self
    }

    fn person(&self) -> Person {
        Person {
            family_name: self.family_name.clone(),
            given_names: self.given_names.clone(),
            birth_date: self.birth,
            birth_place: self.birth_place.clone(),
            id_nr: self.id_nr.clone(),
            auskunftssperre: self.sperre.is_some(),
            sperrvermerk: false,
            ereignis_zeichen: None,
            moved_in: None,
        }
    }
}

/// Per-person parts of a 1704 that are not the person's register data.
struct Meldeschein {
    lived_since: Option<Date>,
    sperrvermerk_alt: bool,
    zuzug_bund: Option<Date>,
    doc: Option<Doc>,
    widersprueche: Vec<&'static str>,
    nur_partner: bool,
}

enum EarlierPlace {
    Abroad(&'static str),
    Withheld,
    Unknown(Option<&'static str>),
}

struct Earlier {
    place: EarlierPlace,
    moved_out: PartialDate,
}

impl Earlier {
    fn render(&self, x: &mut Xml) {
        match self.place {
            EarlierPlace::Abroad(staat) => {
                x.el("xmeld:anschrift.ausland", |x| x.code("xmeld:staat", Some(GEBIET_LIST), staat));
            }
            EarlierPlace::Withheld => {
                x.el("xmeld:anschrift.ausland", |x| x.leaf("xmeld:zurechtnichtuebermittelt", "true"));
            }
            EarlierPlace::Unknown(sachverhalt) => x.el("xmeld:anschrift.unbekannt", |x| {
                x.leaf("xmeld:anschriftUnbekannt", "true");
                if let Some(code) = sachverhalt {
                    x.code("xmeld:sachverhalt", None, code);
                }
            }),
        }
    }
}

/// A document (`xmeld:type.Ausweisdokument`).
#[derive(Debug, Clone)]
struct Doc {
    passart: &'static str,
    gueltig_bis: Option<Date>,
    seriennummer: Option<String>,
    behoerde: String,
    ausgestellt: Option<Date>,
    sperrsumme: Option<String>,
    sperrkennwort: Option<String>,
}

impl Doc {
    fn facts(&self) -> Document {
        Document {
            passart: self.passart.to_owned(),
            seriennummer: self.seriennummer.clone(),
            ausgestellt: self.ausgestellt.map(|d| d.to_string()),
            gueltig_bis: self.gueltig_bis.map(|d| d.to_string()),
            sperrkennwort: self.sperrkennwort.clone(),
        }
    }
}

/// An XML writer that indents with tabs, as the fixtures do.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn line(&mut self, text: &str) {
        for _ in 0..self.depth {
            self.out.push('\t');
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn open(&mut self, name: &str, attributes: &str) {
        self.line(&format!("<{name}{attributes}>"));
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.line(&format!("</{name}>"));
    }

    fn el(&mut self, name: &str, body: impl FnOnce(&mut Self)) {
        self.open(name, "");
        body(self);
        self.close(name);
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.line(&format!("<{name}>{}</{name}>", escape(text)));
    }

    /// A code element: `<name listVersionID="…"><code>…</code></name>`.
    fn code(&mut self, name: &str, list_version: Option<&str>, code: &str) {
        let attributes = list_version.map(|v| format!(" listVersionID=\"{}\"", escape(v))).unwrap_or_default();
        self.open(name, &attributes);
        self.leaf("code", code);
        self.close(name);
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// XML declaration, comment, root element and the header (`nachrichtenkopf.g2g`,
/// `anschrift.leser`, `anschrift.autor`). The caller closes the root.
fn header(x: &mut Xml, comment: &str, msg: &Message, reader: &Party, author: &Party, with_reader_address: bool) {
    x.line("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    x.line(&format!("<!-- {} -->", comment.replace("--", "-")));
    let attributes = format!(
        "\n\txmlns:xmeld=\"http://www.osci.de/xmeld2511a\"\
         \n\txmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\
         \n\txsi:schemaLocation=\"http://www.osci.de/xmeld2511a http://www.osci.de/xmeld2511a/{}\"\
         \n\ttest=\"Testnachricht efile-bridge (generiert, fiktive Daten)\"\
         \n\tversion=\"25.11a\"\
         \n\tprodukt=\"efile-bridge Testdatengenerator\"\
         \n\tprodukthersteller=\"efile-bridge\"\
         \n\tproduktversion=\"{}\"\
         \n\tstandard=\"XMeld\"",
        msg.kind.schema_file(),
        env!("CARGO_PKG_VERSION")
    );
    x.open(&format!("xmeld:{}", msg.kind.message_name()), &attributes);
    x.el("nachrichtenkopf.g2g", |x| {
        x.el("identifikation.nachricht", |x| {
            x.leaf("nachrichtenUUID", &msg.uuid);
            x.code("nachrichtentyp", None, msg.kind.code());
            x.leaf("erstellungszeitpunkt", &msg.created.text());
        });
        x.el("leser", |x| party(x, reader, false));
        x.el("autor", |x| party(x, author, true));
    });
    if with_reader_address {
        postal(x, "anschrift.leser", &reader.postal);
    }
    postal(x, "anschrift.autor", &author.postal);
}

fn party(x: &mut Xml, p: &Party, reachable: bool) {
    x.code("verzeichnisdienst", Some("3"), "DVDV");
    x.leaf("kennung", &p.kennung);
    x.leaf("name", &p.name);
    // The author must be reachable (`xibehoerde:Behoerde.Erreichbar`: erreichbarkeit 1..n).
    if reachable {
        x.el("erreichbarkeit", |x| {
            x.code("kanal", Some("3"), "01");
            x.leaf("kennung", "meldewesen.test@example.org");
        });
    }
}

fn postal(x: &mut Xml, element: &str, p: &Postal) {
    x.el(element, |x| match p {
        Postal::Building { strasse, hausnummer, plz, ort } => x.el("gebaeude", |x| {
            x.leaf("hausnummer", hausnummer);
            x.leaf("postleitzahl", plz);
            x.leaf("strasse", strasse);
            x.leaf("wohnort", ort);
        }),
        Postal::Postfach { postfach, plz, ort } => x.el("postfach", |x| {
            x.leaf("postfach", postfach);
            x.leaf("wohnort", ort);
            x.leaf("postleitzahl", plz);
        }),
    });
}

/// The fields of `xmeld:type.AnschriftMelderecht.Inland`, in schema order.
fn inland_fields(x: &mut Xml, a: &Address) {
    x.code("gemeindeschluessel", Some(AGS_LIST), &a.ags);
    x.leaf("hausnummer", &a.hausnummer);
    if let Some(b) = &a.buchstabe {
        x.leaf("hausnummerBuchstabeZusatzziffer", b);
    }
    x.leaf("postleitzahl", &a.plz);
    if let Some(s) = &a.stockwerk {
        x.leaf("stockwerkswohnungsnummer", s);
    }
    x.leaf("strasse", &a.strasse);
    x.leaf("wohnort", &a.wohnort);
    if let Some(z) = &a.zusatz {
        x.leaf("zusatzangaben", z);
    }
}

/// `xmeld:anschrift` with the inland address nested twice, as in every `wohnung.*` and
/// `WOHNUNG` of the Rückmeldung and Fortschreibung messages.
fn anschrift_inland_doubled(x: &mut Xml, a: &Address) {
    x.el("xmeld:anschrift", |x| {
        x.el("xmeld:anschrift.inland", |x| x.el("xmeld:anschrift.inland", |x| inland_fields(x, a)));
    });
}

/// `xmeld:type.WohnungOhneDatum.Inland`.
fn wohnung_inland(x: &mut Xml, element: &str, a: &Address, status: &str) {
    x.el(element, |x| {
        anschrift_inland_doubled(x, a);
        x.code("xmeld:statusderwohnung", None, status);
    });
}

/// `xian:AllgemeinerName`: the name, or `nichtVorhanden` when there rightly is none.
fn allgemeiner_name(x: &mut Xml, element: &str, name: Option<&str>) {
    x.el(element, |x| match name {
        Some(n) => x.leaf("name", n),
        None => x.leaf("nichtVorhanden", "true"),
    });
}

/// The name parts used here of `xmeld:type.NameNatuerlichePerson` and its restriction for
/// identification (where `vornamen` is mandatory), in schema order.
fn name_block(x: &mut Xml, element: &str, r: &Resident) {
    x.el(element, |x| {
        x.el("xmeld:familienname.unstrukturiert", |x| allgemeiner_name(x, "xmeld:nachname", Some(&r.family_name)));
        if let Some(g) = &r.geburtsname {
            allgemeiner_name(x, "xmeld:geburtsname.unstrukturiert", Some(g));
        }
        x.el("xmeld:vornamen", |x| allgemeiner_name(x, "xmeld:vornamen", r.given_names.as_deref()));
        if let Some(g) = &r.gebraeuchlich {
            allgemeiner_name(x, "xmeld:gebraeuchlicherVorname", Some(g));
        }
    });
}

/// `xmeld:type.Geburt` (and `GeburtMitHistorie` without earlier dates).
fn geburt(x: &mut Xml, element: &str, r: &Resident) {
    x.el(element, |x| {
        if let Some(p) = &r.birth_place {
            x.leaf("xmeld:geburtsort", p);
        }
        if let Some(s) = r.birth_state {
            x.code("xmeld:geburtsortStaat", Some(GEBIET_LIST), s);
        }
        teilbekanntes_datum(x, "xmeld:geburtsdatum", &r.birth);
    });
}

/// The inner choice of `xida:TeilbekanntesDatum`; nothing for an unknown date.
fn datum_teile(x: &mut Xml, d: &PartialDate) {
    match *d {
        PartialDate::Day(day) => x.leaf("jahrMonatTag", &day.to_string()),
        PartialDate::Month(y, m) => x.leaf("jahrMonat", &format!("{y:04}-{m:02}")),
        PartialDate::Year(y) => x.leaf("jahr", &format!("{y:04}")),
        PartialDate::Unknown => {}
    }
}

/// `xida:TeilbekanntesDatumMitUnbekannt`.
fn teilbekanntes_datum(x: &mut Xml, element: &str, d: &PartialDate) {
    x.el(element, |x| match d {
        PartialDate::Unknown => x.leaf("unbekannt", "true"),
        known => x.el("teilbekanntesDatum", |x| datum_teile(x, known)),
    });
}

/// `xida:TagesdatumMitUnbekannt`.
fn tagesdatum_oder_unbekannt(x: &mut Xml, element: &str, d: Option<Date>) {
    x.el(element, |x| match d {
        Some(d) => x.leaf("datum", &d.to_string()),
        None => x.leaf("unbekannt", "true"),
    });
}

/// `xmeld:type.FamilienstandNurBegruendung`; `datumBeginn` has no `unbekannt`, so an
/// unknown start is left out.
fn familienstand(x: &mut Xml, element: &str, f: &Familienstand) {
    x.el(element, |x| {
        if let Some(since) = f.since.filter(|s| *s != PartialDate::Unknown) {
            x.el("xmeld:datumBeginn", |x| datum_teile(x, &since));
        }
        x.code("xmeld:familienstand", None, f.code);
    });
}

/// `xmeld:type.Auskunftssperre`.
fn sperre(x: &mut Xml, element: &str, s: &Sperre) {
    x.el(element, |x| {
        if let Some(f) = s.frist {
            x.leaf("xmeld:frist", &f.to_string());
        }
        x.code("xmeld:grund", None, s.grund);
    });
}

/// `xmeld:type.Ausweisdokument`; the blocking data exist only in the Fortschreibung
/// documents (0201 and 1704 use the type without them, and never get them here).
fn ausweisdokument(x: &mut Xml, element: &str, d: &Doc) {
    x.el(element, |x| {
        x.code("xmeld:passart", None, d.passart);
        if let Some(g) = d.gueltig_bis {
            x.leaf("xmeld:gueltigkeitsdauer", &g.to_string());
        }
        if let Some(s) = &d.seriennummer {
            x.leaf("xmeld:seriennummer", s);
        }
        x.leaf("xmeld:behoerde", &d.behoerde);
        if let Some(a) = d.ausgestellt {
            x.leaf("xmeld:ausstellungsdatum", &a.to_string());
        }
        if let Some(s) = &d.sperrsumme {
            x.leaf("xmeld:sperrsumme", s);
        }
        if let Some(k) = &d.sperrkennwort {
            x.leaf("xmeld:sperrkennwort", k);
        }
    });
}

/// Base64 in lines of 76 characters, as mail and the fixtures wrap it (`xs:base64Binary`
/// allows the whitespace).
fn base64_lines(data: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let lines: Vec<&str> = text.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    lines.join("\n")
}

/// A one-page PDF 1.4 that says what it is; the message UUID makes every one different.
fn landlord_pdf(uuid: &str, moved_in: &str) -> Vec<u8> {
    let lines = [
        "Wohnungsgeberbestaetigung nach Paragraph 19 Bundesmeldegesetz".to_owned(),
        format!("Datum des Einzugs: {moved_in}"),
        format!("Nachricht: {uuid}"),
        "FIKTIVES TESTDOKUMENT - efile-bridge Testdatengenerator".to_owned(),
    ];
    let mut content = String::from("BT /F1 11 Tf 56 780 Td 14 TL\n");
    for line in &lines {
        content.push_str(&format!("({}) '\n", line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)")));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (n, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{body}\nendobj\n", n + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for o in offsets {
        pdf.push_str(&format!("{o:010} 00000 n \n"));
    }
    pdf.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    pdf.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_digit_matches_hand_made_idnrs() {
        // The fixtures' IdNrs were computed by hand from the published algorithm.
        for known in ["08962367457", "04398256379", "05821196474", "04138652093", "07194235764", "02565478918"] {
            let digits: Vec<u8> = known.bytes().map(|b| b - b'0').collect();
            assert_eq!(id_nr_check_digit(&digits[..10]), digits[10], "{known}");
        }
    }
}
