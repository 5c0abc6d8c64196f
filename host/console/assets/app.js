// efile-bridge web console: a plain ES module, no framework, no build step.
//
// Every element is built with the DOM API and every piece of data is set as text
// (`textContent`), never as HTML: names, titles, metadata and XML come from citizens'
// messages. The page runs under a strict Content-Security-Policy (no inline script or style).
//
// The API token lives in sessionStorage only (no cookies, no localStorage) and is sent as
// `Authorization: Bearer …` on every call. The language choice is kept in localStorage.

const KEY_LANG = 'efile-bridge.lang';
const KEY_TOKEN = 'efile-bridge.token';
const KEY_TENANT = 'efile-bridge.tenant';
const KEY_OPERATOR = 'efile-bridge.operator';
/**
 * The installation key's fingerprint this browser saw at its first successful proof check for
 * this site (trust on first use): later checks must find the same key, so a server cannot
 * swap in a key of its own and sign forged proofs with it unnoticed.
 */
const KEY_PIN = 'efile-bridge.key-pin';

const state = {
  lang: 'de',
  /** The API token; `null` while logged out ('' is a valid token in open mode). */
  token: null,
  /** `GET /v1/session`. */
  session: null,
  /** The tenant (AGS) the clerk view shows. */
  ags: null,
  /** Increases with every view render; a slower, older render never replaces a newer one. */
  gen: 0,
  /** Timers (polling) that end when the view changes. */
  timers: new Set(),
  /** Keep the status/error messages across the next navigation (set before a programmatic one). */
  keepMessages: false,
  /** Re-renders the current view (set by `route`). */
  current: null,
  /**
   * The clerk's last search `{ags, name, birth}`. Kept in memory, not in the URL: names and
   * birth dates of citizens must not end up in the browser's history.
   */
  search: null,
};

// ---------------------------------------------------------------------------------------------
// Every visible string, German (default) and English.

export const DICT = {
  de: {
    'app.title': 'efile-bridge – Konsole',
    'app.short': 'efile-bridge',
    'lang.label': 'Sprache',
    'skip': 'Zum Inhalt springen',
    'loading': 'Wird geladen …',
    'yes': 'ja',
    'no': 'nein',
    'date.none': 'ohne Datum',
    'error.title': 'Fehler',
    'err.http': 'Fehler (HTTP {status})',
    'err.network': 'Der Server ist nicht erreichbar. Bitte prüfen Sie die Verbindung.',
    'err.unexpected': 'Unerwarteter Fehler',

    'login.title': 'Anmelden',
    'login.hint': 'Fügen Sie Ihr Zugangstoken ein. Es bleibt nur in diesem Browser-Tab gespeichert, bis Sie sich abmelden oder den Tab schließen.',
    'login.token': 'Zugangstoken',
    'login.submit': 'Anmelden',
    'login.done': 'Angemeldet als {name}.',
    'login.rejected': 'Das Token wurde nicht angenommen',
    'login.expired': 'Ihre Anmeldung ist nicht mehr gültig. Bitte melden Sie sich erneut an',
    'login.loggedOut': 'Sie sind abgemeldet.',

    'session.as': 'Angemeldet als',
    'session.clearance': 'Freigabe',
    'session.tenant': 'Mandant für die Sachbearbeitung',
    'session.logout': 'Abmelden',
    'nav.label': 'Hauptnavigation',
    'nav.clerk': 'Sachbearbeitung',
    'nav.operator': 'Betrieb',

    'role.admin': 'Administration',
    'role.tenant': 'Mandant',
    'role.clerk': 'Sachbearbeitung',
    'role.open': 'offener Modus',

    'conf.normal': 'normal',
    'conf.high': 'vertraulich',
    'conf.secret': 'streng vertraulich',

    'doctype.anmeldung': 'Anmeldung',
    'doctype.abmeldung': 'Abmeldung',
    'doctype.ummeldung': 'Ummeldung',
    'doctype.ausweisdokument': 'Personalausweis',
    'doctype.reisepass': 'Reisepass',
    'doctype.namensaenderung': 'Namensänderung',
    'doctype.sterbefall': 'Sterbefall',
    'doctype.auskunftssperre': 'Auskunftssperre',
    'doctype.passversagung': 'Passversagung',

    'idkind.id-nr': 'Identifikationsnummer',
    'idkind.register-key': 'Ordnungsmerkmal der Meldebehörde',
    'idkind.fingerprint': 'Abgleich über Name und Geburt',

    'clerk.title': 'Sachbearbeitung',
    'clerk.nav': 'Sachbearbeitung',
    'clerk.search': 'Bürgersuche',
    'clerk.reviews': 'Klärfälle',
    'clerk.tenant': 'Mandant',
    'clerk.noTenant': 'Für Ihre Anmeldung ist kein Mandant verfügbar.',

    'search.title': 'Bürgersuche',
    'search.name': 'Name',
    'search.birth': 'Geburtsdatum',
    'search.submit': 'Suchen',
    'search.hint': 'Suchen Sie nach Name, Geburtsdatum oder beidem. Eine leere Suche zeigt alle Bürgerinnen und Bürger.',
    'search.results': 'Suchergebnis',
    'search.count.one': '1 Treffer',
    'search.count.other': '{n} Treffer',

    'citizen.name': 'Name',
    'citizen.birth': 'Geburtsdatum',
    'citizen.documents': 'Dokumente',
    'citizen.data': 'Stammdaten',
    'citizen.family': 'Familienname',
    'citizen.given': 'Vornamen',
    'citizen.identifiers': 'Bekannte Kennungen',
    'citizen.id': 'Bürger-ID',
    'citizen.files': 'Akten',
    'citizen.timeline': 'Akte als Zeitleiste',
    'citizen.noDocuments': 'Keine Dokumente vorhanden.',
    'citizen.withheld.one': '1 vertrauliches Dokument wird für Ihre Rolle nicht angezeigt.',
    'citizen.withheld.other': '{n} vertrauliche Dokumente werden für Ihre Rolle nicht angezeigt.',

    'doc.details': 'Angaben zum Dokument',
    'doc.type': 'Dokumentart',
    'doc.title': 'Titel',
    'doc.eventDate': 'Ereignisdatum',
    'doc.citizen': 'Bürger/in',
    'doc.caseType': 'Vorgang',
    'doc.caseId': 'Vorgangs-ID',
    'doc.filePlan': 'Aktenplan',
    'doc.fileSubject': 'Aktenbetreff',
    'doc.fileId': 'Akten-ID',
    'doc.retention': 'Aufbewahrung bis',
    'doc.retentionOpen': 'Frist läuft noch nicht',
    'doc.retentionRule': 'Aufbewahrungsregel',
    'doc.confidentiality': 'Vertraulichkeit',
    'doc.version': 'Version',
    'doc.id': 'Dokument-ID',
    'doc.messageUuid': 'Nachrichten-UUID',
    'doc.messageType': 'Nachrichtentyp',
    'doc.receivedAt': 'Eingegangen am',
    'doc.contentDeletedLabel': 'Inhalt gelöscht',
    'doc.contentDeleted': 'Der Inhalt wurde nach Ablauf der Aufbewahrungsfrist gelöscht; das Journal belegt weiterhin, dass es ihn gab.',
    'doc.metadata': 'Metadaten',
    'doc.noMetadata': 'Keine Metadaten.',
    'doc.versions': 'Versionen',
    'doc.digest': 'Prüfsumme (SHA-256)',
    'doc.journalIndex': 'Journal-Nr.',
    'doc.deliveries': 'Zustellungen',
    'doc.attachments': 'Anlagen',
    'doc.noAttachments': 'Keine Anlagen.',
    'doc.download': 'Herunterladen:',
    'doc.downloaded': 'Anlage „{name}“ heruntergeladen.',
    'doc.original': 'Originalnachricht',
    'doc.showOriginal': 'Original-XML anzeigen',
    'doc.originalLabel': 'Original-XML der Nachricht',
    'doc.originalShown': 'Original-XML wird angezeigt.',
    'doc.backTo': 'Zurück zur Akte von {name}',

    'proof.title': 'Nachweis im Journal',
    'proof.hint': 'Der Browser prüft selbst, dass dieses Dokument im signierten Journal steht.',
    'proof.check': 'Nachweis im Journal prüfen',
    'proof.running': 'Nachweis wird geprüft …',
    'proof.needsHttps': 'Die Prüfung im Browser braucht eine HTTPS-Verbindung; es wurde nichts geprüft.',
    'proof.unsupported': 'Dieser Browser kann Ed25519-Signaturen nicht prüfen; der Nachweis wurde nicht bestätigt.',
    'proof.loadFailed': 'Der Nachweis konnte nicht geladen werden; es wurde nichts geprüft.',
    'proof.ok': 'Nachweis verifiziert: Das Dokument steht im Journal (Stand: {size} Einträge, Signatur gültig).',
    'proof.failed': 'Prüfung fehlgeschlagen. Nicht bestanden:',
    'proof.pass': 'bestanden',
    'proof.fail': 'fehlgeschlagen',
    'proof.step.receipt': 'Der Nachweis hat das erwartete Format (efile-bridge-receipt/1)',
    'proof.step.leaf': 'Der Journaleintrag ergibt den angegebenen Blatt-Hash',
    'proof.step.inclusion': 'Der Eintrag ist im Merkle-Baum des Checkpoints enthalten',
    'proof.step.signature': 'Die Signatur des Checkpoints passt zum öffentlichen Schlüssel dieser Installation',
    'proof.step.meta': 'Der Eintrag legt genau diese Version des Dokuments mit ihrer Prüfsumme ab',
    'proof.step.pin': 'Der Schlüssel ist derselbe, den dieser Browser bei der ersten Prüfung gespeichert hat',
    'proof.pin.first': 'erste Prüfung in diesem Browser: Schlüssel gespeichert',
    'proof.pin.same': 'gespeichert am {date}',
    'proof.pin.changed': 'gespeichert am {date} war {pinned}, jetzt {now}; bei einem angekündigten Schlüsselwechsel den gespeicherten Schlüssel in den Browserdaten dieser Seite löschen',
    'proof.entry': 'Journaleintrag',
    'proof.entryTime': 'Zeitpunkt des Eintrags',
    'proof.version': 'Version',
    'proof.digest': 'Prüfsumme (SHA-256)',
    'proof.treeSize': 'Einträge im Checkpoint',
    'proof.time': 'Checkpoint signiert am',
    'proof.origin': 'Installation (Origin)',
    'proof.fingerprint': 'Fingerabdruck des öffentlichen Schlüssels (SHA-256)',

    'reviews.title': 'Klärfälle',
    'reviews.hint': 'Diese Dokumente warten, weil nicht eindeutig ist, zu wem sie gehören.',
    'reviews.count.one': '1 offener Klärfall',
    'reviews.count.other': '{n} offene Klärfälle',
    'reviews.reason': 'Grund',
    'reviews.candidates': 'Mögliche Personen',
    'reviews.message': 'Nachricht',

    'review.title': 'Klärfall',
    'review.back': 'Zurück zu den Klärfällen',
    'review.record': 'Wartender Datensatz',
    'review.candidates': 'Mögliche Personen',
    'review.action': 'Entscheidung',
    'review.assign': 'Dieser Person zuordnen',
    'review.assigned': 'Klärfall entschieden: Das Dokument wurde {name} zugeordnet.',
    'review.newHint': 'Gehört das Dokument zu keiner der genannten Personen, legen Sie eine neue Akte an.',
    'review.newCitizen': 'Neue Person anlegen',
    'review.newDone': 'Klärfall entschieden: Für das Dokument wurde eine neue Person angelegt.',
    'review.decided': 'Entscheidung',
    'review.decision': 'Ergebnis',
    'review.by': 'Entschieden von',
    'decision.assigned': 'zugeordnet',
    'decision.assign': 'zugeordnet',
    'decision.new-citizen': 'neue Person angelegt',

    'op.title': 'Betrieb',
    'op.sections': 'Bereiche',
    'op.name': 'Ihr Name',
    'op.nameHint': 'Wird bei Adapterwechseln und Zustellentscheidungen im Journal vermerkt.',
    'op.tenants': 'Mandanten',
    'op.adapters': 'Adapter',
    'op.flow': 'Nachrichtenfluss',
    'op.deadletters': 'Unzustellbare Sendungen',
    'op.journal': 'Journal',
    'op.noTenants': 'Keine Mandanten eingerichtet.',
    'op.ags': 'AGS',
    'op.tenantName': 'Name',
    'op.state': 'Status',
    'op.enabled': 'aktiv',
    'op.disabled': 'gesperrt',
    'op.activeAdapters': 'Adapter',
    'op.tokens': 'Tokens',
    'op.rate': 'Ratenlimit',
    'op.noLimit': 'keins',
    'op.open': 'Sachbearbeitung',
    'op.openClerk': 'öffnen',

    'ad.installed': 'Installierte Adapter',
    'ad.noneInstalled': 'Keine Adapterpakete installiert.',
    'ad.adapter': 'Adapter',
    'ad.publisher': 'Herausgeber',
    'ad.componentHash': 'Komponenten-Hash',
    'ad.active': 'Aktiver Adapter',
    'ad.candidates': 'Andere installierte Versionen',
    'ad.noCandidates': 'Keine weiteren Versionen installiert.',
    'ad.activate': 'Aktivieren',
    'ad.rollback': 'Letzten Wechsel zurücknehmen',
    'ad.history': 'Wechsel-Historie',
    'ad.noHistory': 'Noch keine Wechsel.',
    'ad.action': 'Aktion',
    'ad.scope': 'Geltungsbereich',
    'ad.scopeAll': 'alle Nachrichtentypen',
    'ad.by': 'Von',
    'ad.configDefault': 'Betreiberkonfiguration',
    'ad.confirmActivate': 'Adapter {adapter} für {tenant} aktivieren? Neue Nachrichten werden sofort damit verarbeitet.',
    'ad.confirmRollback': 'Den letzten Adapterwechsel für {tenant} zurücknehmen?',
    'ad.yesActivate': 'Ja, aktivieren',
    'ad.yesRollback': 'Ja, zurücknehmen',
    'ad.activated': 'Adapter {adapter} für {tenant} aktiviert.',
    'ad.shadowStart': 'Schattenlauf starten',
    'ad.shadowStop': 'Schattenlauf beenden',
    'ad.shadowStarted': 'Schattenlauf mit {adapter} für {tenant} gestartet: neue Nachrichten laufen zusätzlich durch den Kandidaten, abgelegt wird weiter mit dem aktiven Adapter.',
    'ad.shadowStopped': 'Schattenlauf für {tenant} beendet.',
    'ad.rolledBack': 'Letzter Adapterwechsel für {tenant} zurückgenommen.',
    'ad.nowActive': 'Jetzt gilt: {adapter}.',
    'ad.journalRef': '(Journal-Nr. {index})',
    'switch.activate': 'aktiviert',
    'switch.rollback': 'zurückgenommen',
    'confirm.no': 'Abbrechen',
    'confirm.cancelled': 'Abgebrochen.',

    'shadow.title': 'Schattenlauf-Vergleiche',
    'shadow.none': 'Keine Vergleiche vorhanden.',
    'shadow.at': 'Zeit',
    'shadow.candidate': 'Kandidat',
    'shadow.message': 'Nachricht',
    'shadow.outcome': 'Ergebnis',
    'shadow.changes': 'Abweichungen',
    'shadow.equal': 'gleich',
    'shadow.differs': 'abweichend',
    'shadow.absent': '(fehlt)',
    'shadow.error': 'Fehler',
    'shadow.filedBy': 'abgelegt von',
    'outcome.identical': 'gleich',
    'outcome.differs': 'abweichend',
    'outcome.candidate-failed': 'Kandidat fehlgeschlagen',
    'outcome.fixed': 'behoben',
    'outcome.both-failed': 'beide fehlgeschlagen',

    'flow.accepted': 'Angenommen',
    'flow.processed': 'Verarbeitet',
    'flow.failed': 'Fehlgeschlagen',
    'flow.received24': 'Eingang 24 h',
    'flow.p50': 'Laufzeit p50',
    'flow.p95': 'Laufzeit p95',
    'flow.max': 'Laufzeit max.',
    'flow.sample': 'aus {n} Nachrichten',
    'flow.lastError': 'Letzter Fehler',

    'dl.none': 'Keine unzustellbaren Sendungen.',
    'dl.count.one': '1 unzustellbare Sendung',
    'dl.count.other': '{n} unzustellbare Sendungen',
    'dl.delivery': 'Zustellung',
    'dl.sink': 'Ziel',
    'dl.state': 'Status',
    'dl.attempts': 'Versuche',
    'dl.key': 'Idempotenzschlüssel',
    'dl.lastError': 'Letzter Fehler',
    'dl.errors': 'Fehlgeschlagene Versuche',
    'dl.redeliver': 'Erneut zustellen',
    'dl.discard': 'Verwerfen',
    'dl.reason': 'Grund für das Verwerfen',
    'dl.reasonRequired': 'Bitte geben Sie einen Grund für das Verwerfen an.',
    'dl.redelivered': 'Zustellung {id} wird erneut versucht.',
    'dl.discarded': 'Zustellung {id} wurde verworfen.',
    'dstate.pending': 'wartet',
    'dstate.delivered': 'zugestellt',
    'dstate.dead': 'unzustellbar',
    'dstate.discarded': 'verworfen',

    'verify.title': 'Journalprüfung',
    'verify.state': 'Stand',
    'verify.run': 'Journal jetzt prüfen',
    'verify.started': 'Begonnen',
    'verify.finished': 'Beendet',
    'verify.error': 'Fehler',
    'verify.started.msg': 'Journalprüfung gestartet.',
    'verify.alreadyRunning': 'Eine Prüfung läuft bereits',
    'verify.doneOk': 'Journalprüfung abgeschlossen: OK.',
    'verify.doneFailed': 'Journalprüfung fehlgeschlagen',
    'vstate.never': 'noch nie geprüft',
    'vstate.running': 'Prüfung läuft …',
    'vstate.ok': 'OK',
    'vstate.failed': 'Fehlgeschlagen',
    'report.entries': 'Einträge neu berechnet',
    'report.checkpoints': 'Checkpoints geprüft',
    'report.consistency_steps': 'Konsistenzbeweise geprüft',
    'report.messages': 'Nachrichten geprüft',
    'report.record_versions': 'Dokumentversionen geprüft',
    'report.payloads': 'Inhalte neu gehasht',
    'report.payload_bytes': 'Bytes neu gehasht',
    'report.deleted_payloads': 'Gelöschte Inhalte (mit Löscheintrag)',
    'report.payload_seconds': 'Dauer Inhalte',
    'report.seconds': 'Dauer gesamt',

    'cp.title': 'Signierte Checkpoints (neueste zuerst)',
    'cp.none': 'Noch keine Checkpoints.',
    'cp.size': 'Einträge',
    'cp.time': 'Signiert am',
    'cp.root': 'Wurzel-Hash',
    'cp.origin': 'Installation',
  },
  en: {
    'app.title': 'efile-bridge – console',
    'app.short': 'efile-bridge',
    'lang.label': 'Language',
    'skip': 'Skip to content',
    'loading': 'Loading …',
    'yes': 'yes',
    'no': 'no',
    'date.none': 'no date',
    'error.title': 'Error',
    'err.http': 'Error (HTTP {status})',
    'err.network': 'The server cannot be reached. Please check the connection.',
    'err.unexpected': 'Unexpected error',

    'login.title': 'Log in',
    'login.hint': 'Paste your access token. It is kept in this browser tab only, until you log out or close the tab.',
    'login.token': 'Access token',
    'login.submit': 'Log in',
    'login.done': 'Logged in as {name}.',
    'login.rejected': 'The token was not accepted',
    'login.expired': 'Your login is no longer valid. Please log in again',
    'login.loggedOut': 'You are logged out.',

    'session.as': 'Logged in as',
    'session.clearance': 'clearance',
    'session.tenant': 'Tenant for case work',
    'session.logout': 'Log out',
    'nav.label': 'Main navigation',
    'nav.clerk': 'Case work',
    'nav.operator': 'Operations',

    'role.admin': 'administrator',
    'role.tenant': 'tenant',
    'role.clerk': 'clerk',
    'role.open': 'open mode',

    'conf.normal': 'normal',
    'conf.high': 'confidential',
    'conf.secret': 'strictly confidential',

    'doctype.anmeldung': 'Registration',
    'doctype.abmeldung': 'Deregistration',
    'doctype.ummeldung': 'Change of address',
    'doctype.ausweisdokument': 'Identity card',
    'doctype.reisepass': 'Passport',
    'doctype.namensaenderung': 'Change of name',
    'doctype.sterbefall': 'Death',
    'doctype.auskunftssperre': 'Information block',
    'doctype.passversagung': 'Passport refusal',

    'idkind.id-nr': 'Tax identification number',
    'idkind.register-key': 'Registration office reference',
    'idkind.fingerprint': 'Match by name and birth',

    'clerk.title': 'Case work',
    'clerk.nav': 'Case work',
    'clerk.search': 'Find a citizen',
    'clerk.reviews': 'Review items',
    'clerk.tenant': 'Tenant',
    'clerk.noTenant': 'No tenant is available for your login.',

    'search.title': 'Find a citizen',
    'search.name': 'Name',
    'search.birth': 'Date of birth',
    'search.submit': 'Search',
    'search.hint': 'Search by name, date of birth or both. An empty search lists every citizen.',
    'search.results': 'Search results',
    'search.count.one': '1 match',
    'search.count.other': '{n} matches',

    'citizen.name': 'Name',
    'citizen.birth': 'Date of birth',
    'citizen.documents': 'Documents',
    'citizen.data': 'Personal data',
    'citizen.family': 'Family name',
    'citizen.given': 'Given names',
    'citizen.identifiers': 'Known identifiers',
    'citizen.id': 'Citizen id',
    'citizen.files': 'Files',
    'citizen.timeline': 'File as a timeline',
    'citizen.noDocuments': 'No documents.',
    'citizen.withheld.one': '1 confidential document is not shown for your role.',
    'citizen.withheld.other': '{n} confidential documents are not shown for your role.',

    'doc.details': 'Document details',
    'doc.type': 'Document type',
    'doc.title': 'Title',
    'doc.eventDate': 'Event date',
    'doc.citizen': 'Citizen',
    'doc.caseType': 'Case',
    'doc.caseId': 'Case id',
    'doc.filePlan': 'File plan',
    'doc.fileSubject': 'File subject',
    'doc.fileId': 'File id',
    'doc.retention': 'Keep until',
    'doc.retentionOpen': 'period not started yet',
    'doc.retentionRule': 'Retention rule',
    'doc.confidentiality': 'Confidentiality',
    'doc.version': 'Version',
    'doc.id': 'Document id',
    'doc.messageUuid': 'Message UUID',
    'doc.messageType': 'Message type',
    'doc.receivedAt': 'Received',
    'doc.contentDeletedLabel': 'Content deleted',
    'doc.contentDeleted': 'The content was deleted at the end of its retention period; the journal still proves that it existed.',
    'doc.metadata': 'Metadata',
    'doc.noMetadata': 'No metadata.',
    'doc.versions': 'Versions',
    'doc.digest': 'Digest (SHA-256)',
    'doc.journalIndex': 'Journal no.',
    'doc.deliveries': 'Deliveries',
    'doc.attachments': 'Attachments',
    'doc.noAttachments': 'No attachments.',
    'doc.download': 'Download:',
    'doc.downloaded': 'Attachment “{name}” downloaded.',
    'doc.original': 'Original message',
    'doc.showOriginal': 'Show original XML',
    'doc.originalLabel': 'Original XML of the message',
    'doc.originalShown': 'The original XML is shown.',
    'doc.backTo': 'Back to the file of {name}',

    'proof.title': 'Journal proof',
    'proof.hint': 'Your browser checks on its own that this document is in the signed journal.',
    'proof.check': 'Check the journal proof',
    'proof.running': 'Checking the proof …',
    'proof.needsHttps': 'The browser check needs an HTTPS connection; nothing was checked.',
    'proof.unsupported': 'This browser cannot check Ed25519 signatures; the proof was not confirmed.',
    'proof.loadFailed': 'The proof could not be loaded; nothing was checked.',
    'proof.ok': 'Proof verified: the document is in the journal ({size} entries, valid signature).',
    'proof.failed': 'Check failed. Not passed:',
    'proof.pass': 'passed',
    'proof.fail': 'failed',
    'proof.step.receipt': 'The receipt has the expected format (efile-bridge-receipt/1)',
    'proof.step.leaf': 'The journal entry gives the stated leaf hash',
    'proof.step.inclusion': 'The entry is included in the checkpoint’s Merkle tree',
    'proof.step.signature': 'The checkpoint’s signature matches this installation’s public key',
    'proof.step.meta': 'The entry files exactly this version of the document with its digest',
    'proof.step.pin': 'The key is the one this browser stored at its first check',
    'proof.pin.first': 'first check in this browser: key stored',
    'proof.pin.same': 'stored on {date}',
    'proof.pin.changed': 'stored on {date} was {pinned}, now {now}; after an announced key change, delete the stored key in this site\'s browser data',
    'proof.entry': 'Journal entry',
    'proof.entryTime': 'Entry time',
    'proof.version': 'Version',
    'proof.digest': 'Digest (SHA-256)',
    'proof.treeSize': 'Entries in the checkpoint',
    'proof.time': 'Checkpoint signed at',
    'proof.origin': 'Installation (origin)',
    'proof.fingerprint': 'Public key fingerprint (SHA-256)',

    'reviews.title': 'Review items',
    'reviews.hint': 'These documents wait because it is not clear whom they belong to.',
    'reviews.count.one': '1 open review item',
    'reviews.count.other': '{n} open review items',
    'reviews.reason': 'Reason',
    'reviews.candidates': 'Possible persons',
    'reviews.message': 'Message',

    'review.title': 'Review item',
    'review.back': 'Back to the review items',
    'review.record': 'Waiting record',
    'review.candidates': 'Possible persons',
    'review.action': 'Decision',
    'review.assign': 'Assign to this person',
    'review.assigned': 'Review decided: the document was assigned to {name}.',
    'review.newHint': 'If the document belongs to none of these persons, open a new file.',
    'review.newCitizen': 'Create a new person',
    'review.newDone': 'Review decided: a new person was created for the document.',
    'review.decided': 'Decision',
    'review.decision': 'Outcome',
    'review.by': 'Decided by',
    'decision.assigned': 'assigned',
    'decision.assign': 'assigned',
    'decision.new-citizen': 'new person created',

    'op.title': 'Operations',
    'op.sections': 'Sections',
    'op.name': 'Your name',
    'op.nameHint': 'Recorded in the journal with adapter switches and delivery decisions.',
    'op.tenants': 'Tenants',
    'op.adapters': 'Adapters',
    'op.flow': 'Message flow',
    'op.deadletters': 'Dead letters',
    'op.journal': 'Journal',
    'op.noTenants': 'No tenants configured.',
    'op.ags': 'AGS',
    'op.tenantName': 'Name',
    'op.state': 'State',
    'op.enabled': 'active',
    'op.disabled': 'disabled',
    'op.activeAdapters': 'Adapters',
    'op.tokens': 'Tokens',
    'op.rate': 'Rate limit',
    'op.noLimit': 'none',
    'op.open': 'Case work',
    'op.openClerk': 'open',

    'ad.installed': 'Installed adapters',
    'ad.noneInstalled': 'No adapter packages installed.',
    'ad.adapter': 'Adapter',
    'ad.publisher': 'Publisher',
    'ad.componentHash': 'Component hash',
    'ad.active': 'Active adapter',
    'ad.candidates': 'Other installed versions',
    'ad.noCandidates': 'No other versions installed.',
    'ad.activate': 'Activate',
    'ad.rollback': 'Undo the last switch',
    'ad.history': 'Switch history',
    'ad.noHistory': 'No switches yet.',
    'ad.action': 'Action',
    'ad.scope': 'Scope',
    'ad.scopeAll': 'all message types',
    'ad.by': 'By',
    'ad.configDefault': 'operator configuration',
    'ad.confirmActivate': 'Activate adapter {adapter} for {tenant}? New messages are processed with it at once.',
    'ad.confirmRollback': 'Undo the last adapter switch of {tenant}?',
    'ad.yesActivate': 'Yes, activate',
    'ad.yesRollback': 'Yes, undo',
    'ad.activated': 'Adapter {adapter} activated for {tenant}.',
    'ad.shadowStart': 'Start a shadow run',
    'ad.shadowStop': 'Stop the shadow run',
    'ad.shadowStarted': 'Shadow run with {adapter} started for {tenant}: new messages also go through the candidate; the active adapter still files them.',
    'ad.shadowStopped': 'Shadow run of {tenant} stopped.',
    'ad.rolledBack': 'Last adapter switch of {tenant} undone.',
    'ad.nowActive': 'Now in force: {adapter}.',
    'ad.journalRef': '(journal no. {index})',
    'switch.activate': 'activated',
    'switch.rollback': 'rolled back',
    'confirm.no': 'Cancel',
    'confirm.cancelled': 'Cancelled.',

    'shadow.title': 'Shadow run comparisons',
    'shadow.none': 'No comparisons yet.',
    'shadow.at': 'Time',
    'shadow.candidate': 'Candidate',
    'shadow.message': 'Message',
    'shadow.outcome': 'Outcome',
    'shadow.changes': 'Differences',
    'shadow.equal': 'equal',
    'shadow.differs': 'differs',
    'shadow.absent': '(absent)',
    'shadow.error': 'Error',
    'shadow.filedBy': 'filed by',
    'outcome.identical': 'equal',
    'outcome.differs': 'differs',
    'outcome.candidate-failed': 'candidate failed',
    'outcome.fixed': 'fixed',
    'outcome.both-failed': 'both failed',

    'flow.accepted': 'Accepted',
    'flow.processed': 'Processed',
    'flow.failed': 'Failed',
    'flow.received24': 'Received 24 h',
    'flow.p50': 'Latency p50',
    'flow.p95': 'Latency p95',
    'flow.max': 'Latency max',
    'flow.sample': 'from {n} messages',
    'flow.lastError': 'Last error',

    'dl.none': 'No dead letters.',
    'dl.count.one': '1 dead letter',
    'dl.count.other': '{n} dead letters',
    'dl.delivery': 'Delivery',
    'dl.sink': 'Sink',
    'dl.state': 'State',
    'dl.attempts': 'Attempts',
    'dl.key': 'Idempotency key',
    'dl.lastError': 'Last error',
    'dl.errors': 'Failed attempts',
    'dl.redeliver': 'Deliver again',
    'dl.discard': 'Discard',
    'dl.reason': 'Reason for discarding',
    'dl.reasonRequired': 'Please give a reason for discarding.',
    'dl.redelivered': 'Delivery {id} is queued again.',
    'dl.discarded': 'Delivery {id} was discarded.',
    'dstate.pending': 'pending',
    'dstate.delivered': 'delivered',
    'dstate.dead': 'dead',
    'dstate.discarded': 'discarded',

    'verify.title': 'Journal check',
    'verify.state': 'State',
    'verify.run': 'Check the journal now',
    'verify.started': 'Started',
    'verify.finished': 'Finished',
    'verify.error': 'Error',
    'verify.started.msg': 'Journal check started.',
    'verify.alreadyRunning': 'A check is already running',
    'verify.doneOk': 'Journal check finished: OK.',
    'verify.doneFailed': 'Journal check failed',
    'vstate.never': 'never checked',
    'vstate.running': 'running …',
    'vstate.ok': 'OK',
    'vstate.failed': 'Failed',
    'report.entries': 'Entries recomputed',
    'report.checkpoints': 'Checkpoints checked',
    'report.consistency_steps': 'Consistency proofs checked',
    'report.messages': 'Messages checked',
    'report.record_versions': 'Record versions checked',
    'report.payloads': 'Payloads rehashed',
    'report.payload_bytes': 'Bytes rehashed',
    'report.deleted_payloads': 'Deleted payloads (with deletion entry)',
    'report.payload_seconds': 'Time for payloads',
    'report.seconds': 'Time in all',

    'cp.title': 'Signed checkpoints (newest first)',
    'cp.none': 'No checkpoints yet.',
    'cp.size': 'Entries',
    'cp.time': 'Signed at',
    'cp.root': 'Root hash',
    'cp.origin': 'Installation',
  },
};

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Storage that may be unavailable (privacy settings): failures are ignored. */
const store = {
  get(area, key) {
    try {
      return globalThis[area]?.getItem(key) ?? null;
    } catch {
      return null;
    }
  },
  set(area, key, value) {
    try {
      if (value === null) globalThis[area]?.removeItem(key);
      else globalThis[area]?.setItem(key, value);
    } catch {
      /* not available */
    }
  },
};

/** Looks a string up in the dictionary of the current language; `{name}` placeholders. */
export function t(key, vars) {
  let s = DICT[state.lang]?.[key] ?? DICT.de[key];
  if (s === undefined) return key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** `key.one` for 1, `key.other` otherwise; `{n}` is the number. */
function tn(key, n, vars = {}) {
  return t(`${key}.${n === 1 ? 'one' : 'other'}`, { n: fmtNumber(n), ...vars });
}

/** The translation of `prefix.value`, or the value itself if the dictionary has none. */
function tr(prefix, value) {
  if (value === null || value === undefined || value === '') return '–';
  const key = `${prefix}.${value}`;
  const s = t(key);
  return s === key ? String(value) : s;
}

/**
 * Builds an element. `attrs`: `class`, `testid` (data-testid), `dataset`, `on*` handlers,
 * booleans (present when true), anything else as an attribute. Children: nodes, strings
 * (as text), arrays, null/false (skipped).
 */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);
const enc = encodeURIComponent;

/**
 * Gives `el` the focus back if the focus got lost meanwhile (a focused button that is
 * disabled drops it to <body>) or sits on one of `from`; never takes it from elsewhere.
 */
function refocus(el, ...from) {
  const now = document.activeElement;
  if (el?.isConnected && (!now || now === document.body || from.includes(now))) el.focus();
}

let uid = 0;
/** A fresh element id. */
const nextId = (prefix) => `${prefix}-${++uid}`;

function fmtNumber(n) {
  if (typeof n !== 'number') return n === null || n === undefined ? '–' : String(n);
  return new Intl.NumberFormat(state.lang === 'de' ? 'de-DE' : 'en-GB').format(n);
}

/** `YYYY`, `YYYY-MM` or `YYYY-MM-DD` as the clerk reads it (German: `TT.MM.JJJJ`). */
function fmtDate(s) {
  const m = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$/.exec(s ?? '');
  if (!m) return s;
  if (state.lang !== 'de') return s;
  if (m[3]) return `${m[3]}.${m[2]}.${m[1]}`;
  if (m[2]) return `${m[2]}.${m[1]}`;
  return m[1];
}

/** A date (or an absent one) as a `<time>` element. */
function dateEl(s) {
  if (!s) return h('span', { class: 'muted' }, t('date.none'));
  return /^\d{4}(-\d{2}(-\d{2})?)?$/.test(s) ? h('time', { datetime: s }, fmtDate(s)) : h('span', {}, s);
}

/** An RFC 3339 timestamp in local time. */
function timeEl(s) {
  if (!s) return h('span', { class: 'muted' }, '–');
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(s));
  const text = d.toLocaleString(state.lang === 'de' ? 'de-DE' : 'en-GB', {
    dateStyle: 'medium',
    timeStyle: 'medium',
  });
  return h('time', { datetime: s }, text);
}

/** A document type, translated; the record model's `{"other": "…"}` form too. */
function docType(v) {
  if (v && typeof v === 'object') v = v.other ?? Object.values(v)[0];
  return tr('doctype', v);
}

function confidentialityBadge(level) {
  if (level !== 'high' && level !== 'secret') return null;
  return h('span', { class: `badge badge-${level}` }, tr('conf', level));
}

/** A definition list from `[label, value]` pairs; values are nodes or text; null rows skipped. */
function dl(rows, cls = 'fields') {
  const list = h('dl', { class: cls });
  for (const row of rows) {
    if (!row) continue;
    const [label, value] = row;
    list.append(h('div', { class: 'field-row' }, h('dt', {}, label), h('dd', {}, value ?? '–')));
  }
  return list;
}

/** A table: `caption`, column headers, rows of cells; the first cell of a row is its header. */
function table({ caption, columns, rows, testid, rowHeader = true, cls = '' }) {
  const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c))));
  const body = h(
    'tbody',
    {},
    rows.map((cells) =>
      h(
        'tr',
        {},
        cells.map((c, i) => (i === 0 && rowHeader ? h('th', { scope: 'row' }, c) : h('td', {}, c))),
      ),
    ),
  );
  const tbl = h('table', { class: `data ${cls}`.trim(), testid }, caption ? h('caption', { class: 'visually-hidden' }, caption) : null, head, body);
  // Wide tables scroll on their own; `markScrollables` makes such a wrapper focusable so a
  // keyboard can scroll it.
  return h('div', { class: 'table-wrap', role: 'group', 'aria-label': caption || columns.join(', ') }, tbl);
}

/** Makes the table wrappers under `root` that scroll sideways keyboard-focusable (only those). */
function markScrollables(root = document) {
  for (const wrap of root.querySelectorAll('.table-wrap')) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) wrap.setAttribute('tabindex', '0');
    else wrap.removeAttribute('tabindex');
  }
}

function code(text) {
  return h('code', { class: 'hash' }, text ?? '–');
}

function heading(level, text, attrs = {}) {
  return h(`h${level}`, { tabindex: '-1', ...attrs }, text);
}

/** The main heading of a view (receives focus after navigation). */
function viewHeading(text, attrs = {}) {
  return heading(2, text, { class: 'view-heading', id: 'view-heading', ...attrs });
}

// ---------------------------------------------------------------------------------------------
// Messages (the aria-live region)

function clearMessages() {
  $('#status-text').textContent = '';
  const err = $('#error');
  err.textContent = '';
  err.hidden = true;
}

/** A success or progress message, read out by screen readers. */
function announce(text) {
  clearMessages();
  $('#status-text').textContent = text;
}

/** An error (an `ApiError` or text) in the current language plus the server's reason. */
function showError(e) {
  clearMessages();
  const err = $('#error');
  err.textContent = errText(e);
  err.hidden = false;
}

function errText(e) {
  if (e instanceof ApiError) {
    if (e.status === 0) return t('err.network');
    const prefix = t('err.http', { status: e.status });
    return e.reason ? `${prefix}: ${e.reason}` : prefix;
  }
  if (e instanceof Error) return `${t('err.unexpected')}: ${e.message}`;
  return String(e);
}

/** A short error box inside a view (the same text also goes to the live region). */
function errorBox(e) {
  showError(e);
  return h('p', { class: 'error-box' }, errText(e));
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, reason) {
    super(reason || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.reason = reason;
    /** A 401 already sent the user to the login form. */
    this.handled = false;
  }
}

/**
 * Calls the API. `body` is sent as JSON. Returns the parsed JSON, or the `Response` when
 * `raw`. Throws `ApiError`; a 401 logs out and shows the login form first.
 */
async function api(path, { method = 'GET', body, raw = false, auth = true } = {}) {
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  const sent = state.token;
  if (auth && sent) headers.Authorization = `Bearer ${sent}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', '');
  }
  if (!resp.ok) {
    let code = '';
    let reason = '';
    try {
      const text = await resp.text();
      try {
        const j = JSON.parse(text);
        code = j.error ?? '';
        reason = j.reason ?? '';
      } catch {
        reason = text.slice(0, 300);
      }
    } catch {
      /* no body */
    }
    const e = new ApiError(resp.status, code, reason);
    if (resp.status === 401 && auth) {
      // An answer to a token that is no longer the current one (logged out, or logged in
      // anew meanwhile) changes nothing.
      if (state.token === sent) unauthorized(e);
      e.handled = true;
    }
    throw e;
  }
  if (raw) return resp;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

const tenantPath = (ags) => `/v1/tenants/${enc(ags)}`;

// ---------------------------------------------------------------------------------------------
// Session

function setToken(token) {
  state.token = token;
  store.set('sessionStorage', KEY_TOKEN, token);
}

/** Forgets the session: token, tenant choice and the operator name the journal records. */
function endSession() {
  setToken(null);
  state.session = null;
  state.ags = null;
  state.search = null;
  store.set('sessionStorage', KEY_TENANT, null);
  store.set('sessionStorage', KEY_OPERATOR, null);
  stopTimers();
}

/** A 401: forget the token and show the login form with the reason. */
function unauthorized(e) {
  // Parallel calls may all fail: the first one logs out, the others have nothing to add.
  if (state.token === null) return;
  const hadSession = state.session !== null;
  endSession();
  buildChrome();
  const text = `${t(hadSession ? 'login.expired' : 'login.rejected')}${e.reason ? `: ${e.reason}` : ''}`;
  show(viewLogin, { focus: true }).then(() => {
    clearMessages();
    const err = $('#error');
    err.textContent = text;
    err.hidden = false;
  });
}

function logout() {
  endSession();
  buildChrome();
  announce(t('login.loggedOut'));
  if (location.hash && location.hash !== '#/') {
    state.keepMessages = true;
    location.hash = '#/';
  } else route();
}

const isOperator = () => ['admin', 'open'].includes(state.session?.role);

function tenantName(ags) {
  const tenant = (state.session?.tenants || []).find((x) => x.ags === ags);
  return tenant ? `${tenant.name} (${ags})` : ags;
}

function defaultRoute() {
  if (isOperator()) return '#/operator';
  const ags = state.session?.tenant;
  return ags ? `#/clerk/${enc(ags)}` : '#/clerk';
}

function chooseTenant() {
  const s = state.session;
  if (!s) return null;
  if (!isOperator()) return s.tenant;
  const known = (s.tenants || []).map((x) => x.ags);
  const saved = store.get('sessionStorage', KEY_TENANT);
  if (state.ags && known.includes(state.ags)) return state.ags;
  if (saved && known.includes(saved)) return saved;
  return known[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// Page chrome: header texts, session bar with navigation

function applyStaticTexts() {
  document.documentElement.lang = state.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  const sel = $('#lang-select');
  if (sel) sel.value = state.lang;
}

/** Builds the session bar (who, navigation, tenant choice, log-out) for the current session. */
function buildChrome() {
  applyStaticTexts();
  const bar = $('#session-bar');
  const s = state.session;
  if (!s) {
    bar.replaceChildren();
    bar.hidden = true;
    return;
  }
  const who = s.name ? s.name : tr('role', s.role);
  const tenantInfo = !isOperator() && s.tenant ? ` · ${tenantName(s.tenant)}` : '';
  const info = h(
    'p',
    { class: 'who' },
    t('session.as'),
    ' ',
    h('strong', {}, who),
    ` (${s.name ? `${tr('role', s.role)}, ` : ''}${t('session.clearance')}: ${tr('conf', s.clearance)})${tenantInfo}`,
  );

  const links = [h('li', {}, h('a', { href: '#/clerk', testid: 'nav-clerk', id: 'nav-clerk' }, t('nav.clerk')))];
  if (isOperator()) {
    links.push(h('li', {}, h('a', { href: '#/operator', testid: 'nav-operator', id: 'nav-operator' }, t('nav.operator'))));
  }
  const nav = h('nav', { 'aria-label': t('nav.label'), class: 'main-nav' }, h('ul', {}, links));

  let picker = null;
  if (isOperator()) {
    const tenants = s.tenants || [];
    const select = h(
      'select',
      { id: 'tenant-select', testid: 'tenant-select', disabled: tenants.length === 0 },
      tenants.map((x) => h('option', { value: x.ags }, `${x.name} (${x.ags})`)),
    );
    select.addEventListener('change', () => {
      state.ags = select.value;
      store.set('sessionStorage', KEY_TENANT, select.value);
      location.hash = `#/clerk/${enc(select.value)}`;
    });
    picker = h('div', { class: 'tenant-picker' }, h('label', { for: 'tenant-select' }, t('session.tenant')), select);
  }
  const out = h('button', { type: 'button', testid: 'logout', class: 'secondary', onclick: logout }, t('session.logout'));
  bar.replaceChildren(info, h('div', { class: 'bar-row' }, nav, picker, out));
  bar.hidden = false;
  updateChrome();
}

/** Marks the current section in the navigation; keeps the tenant choice in step. */
function updateChrome() {
  const area = location.hash.startsWith('#/operator') ? 'operator' : 'clerk';
  const clerk = $('#nav-clerk');
  const op = $('#nav-operator');
  const ags = state.ags ?? chooseTenant();
  if (clerk) {
    clerk.href = ags ? `#/clerk/${enc(ags)}` : '#/clerk';
    if (state.session && area === 'clerk') clerk.setAttribute('aria-current', 'page');
    else clerk.removeAttribute('aria-current');
  }
  if (op) {
    if (area === 'operator') op.setAttribute('aria-current', 'page');
    else op.removeAttribute('aria-current');
  }
  const sel = $('#tenant-select');
  if (sel && ags && sel.value !== ags) sel.value = ags;
}

// ---------------------------------------------------------------------------------------------
// Routing

function parseHash() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : '';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const segs = path
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { segs, query };
}

/** Navigates; re-renders when the hash is already the target (a repeated search). */
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Replaces the current history entry (part of the same navigation: messages stay). */
function redirect(hash) {
  if (location.hash === hash) return;
  state.keepMessages = true;
  location.replace(hash);
}

function stopTimers() {
  for (const id of state.timers) clearInterval(id);
  state.timers.clear();
}

/**
 * Renders a view: `viewFn()` returns `{title, nodes, focus?}` (or throws). `focus`: move the
 * focus to the view's heading (after navigation); `restore`: the id of an element to focus
 * again after an in-place reload.
 */
async function show(viewFn, { focus = true, restore = null } = {}) {
  const gen = ++state.gen;
  stopTimers();
  const main = $('#main');
  main.setAttribute('aria-busy', 'true');
  if (focus) main.replaceChildren(h('p', { class: 'loading' }, t('loading')));
  let v;
  try {
    v = await viewFn();
  } catch (e) {
    if (e?.handled) return;
    showError(e);
    v = {
      title: t('error.title'),
      nodes: [viewHeading(t('error.title')), h('p', { class: 'error-box' }, errText(e))],
    };
  }
  if (gen !== state.gen) return;
  main.replaceChildren(...v.nodes.flat());
  main.removeAttribute('aria-busy');
  markScrollables(main);
  // Not the view's title: it may name a citizen, and titles go into the browser's history.
  document.title = t('app.title');
  if (restore && document.getElementById(restore)) {
    document.getElementById(restore).focus();
  } else if (focus || restore) {
    const target = (v.focus && main.querySelector(v.focus)) || main.querySelector('h2');
    target?.focus();
  }
}

/** Loads `/v1/session` after login or a reload. */
async function loadSession() {
  const s = await api('/v1/session');
  state.session = {
    role: s.role,
    tenant: s.tenant ?? null,
    name: s.name ?? null,
    clearance: s.clearance ?? 'normal',
    tenants: Array.isArray(s.tenants) ? s.tenants : [],
  };
  state.ags = chooseTenant();
  buildChrome();
}

async function route(opts = { focus: true }) {
  state.current = (o) => route(o);
  if (state.token === null) {
    buildChrome();
    return show(viewLogin, opts);
  }
  if (!state.session) {
    try {
      await loadSession();
    } catch (e) {
      if (e.handled) return;
      showError(e);
      return show(viewLogin, opts);
    }
  }
  const { segs, query } = parseHash();
  const s = state.session;
  // `.` and `..` cannot be sent as path segments (`encodeURIComponent` keeps them and the URL
  // parser resolves them, also as `%2E`): such a route would call another API path.
  if (segs.some((x) => x === '.' || x === '..')) return redirect(defaultRoute());
  if (segs[0] === 'operator' && isOperator()) {
    updateChrome();
    return show(() => viewOperator(segs[1]), opts);
  }
  if (segs[0] === 'clerk') {
    let ags = segs[1];
    if (!isOperator()) {
      if (!s.tenant) return show(viewNoTenant, opts);
      if (ags !== s.tenant) return redirect(`#/clerk/${enc(s.tenant)}`);
    }
    if (!ags) {
      const chosen = chooseTenant();
      if (!chosen) return show(viewNoTenant, opts);
      return redirect(`#/clerk/${enc(chosen)}`);
    }
    state.ags = ags;
    store.set('sessionStorage', KEY_TENANT, ags);
    updateChrome();
    const [, , page, id] = segs;
    if (!page) return show(() => viewSearch(ags), opts);
    if (page === 'search') return show(() => viewSearch(ags), opts);
    if (page === 'citizens' && id) return show(() => viewCitizen(ags, id), opts);
    if (page === 'documents' && id) return show(() => viewDocument(ags, id), opts);
    if (page === 'reviews' && id) return show(() => viewReview(ags, id), opts);
    if (page === 'reviews') return show(() => viewReviews(ags), opts);
  }
  return redirect(defaultRoute());
}

/** Re-renders the current view in place (after an action or a language change). */
function reload(restore = null) {
  return state.current?.({ focus: false, restore });
}

// ---------------------------------------------------------------------------------------------
// Login

function viewLogin() {
  const input = h('input', {
    id: 'login-token',
    name: 'token',
    type: 'password',
    testid: 'login-token',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': 'login-hint',
  });
  const form = h(
    'form',
    { class: 'card login-form', 'aria-labelledby': 'view-heading' },
    h('p', { id: 'login-hint', class: 'hint' }, t('login.hint')),
    h('div', { class: 'field' }, h('label', { for: 'login-token' }, t('login.token')), input),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'login-submit', class: 'primary' }, t('login.submit'))),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    input.value = '';
    setToken(token);
    state.session = null;
    try {
      await loadSession();
    } catch (e) {
      if (!e.handled) {
        // Not refused (that is a 401, handled), but not logged in either: keep no token.
        endSession();
        showError(e);
      }
      return;
    }
    announce(t('login.done', { name: state.session.name || tr('role', state.session.role) }));
    const target = location.hash.startsWith('#/') && location.hash !== '#/' ? location.hash : defaultRoute();
    if (target === location.hash) route();
    else {
      state.keepMessages = true;
      location.hash = target;
    }
  });
  return { title: t('login.title'), nodes: [viewHeading(t('login.title')), form], focus: '#view-heading' };
}

function viewNoTenant() {
  return { title: t('clerk.title'), nodes: [viewHeading(t('clerk.title')), h('p', {}, t('clerk.noTenant'))] };
}

// ---------------------------------------------------------------------------------------------
// Clerk view

function clerkNav(ags, current) {
  const link = (href, key, testid, name) =>
    h('a', { href, testid, 'aria-current': current === name ? 'page' : null }, t(key));
  return h(
    'nav',
    { class: 'sub-nav', 'aria-label': t('clerk.nav') },
    h(
      'ul',
      {},
      h('li', {}, link(`#/clerk/${enc(ags)}`, 'clerk.search', null, 'search')),
      h('li', {}, link(`#/clerk/${enc(ags)}/reviews`, 'clerk.reviews', 'reviews-link', 'reviews')),
    ),
  );
}

function tenantLine(ags) {
  return h('p', { class: 'tenant-line' }, `${t('clerk.tenant')}: ${tenantName(ags)}`);
}

async function viewSearch(ags) {
  const last = state.search && state.search.ags === ags ? state.search : null;
  const name = last?.name ?? '';
  const birth = last?.birth ?? '';
  const searched = last !== null;

  const nameInput = h('input', { id: 'search-name', name: 'name', type: 'search', testid: 'search-name', value: name, autocomplete: 'off' });
  const birthInput = h('input', { id: 'search-birth', name: 'birth_date', type: 'date', testid: 'search-birth', value: birth });
  const form = h(
    'form',
    { class: 'card search-form', role: 'search', 'aria-label': t('search.title') },
    h('div', { class: 'field' }, h('label', { for: 'search-name' }, t('search.name')), nameInput),
    h('div', { class: 'field' }, h('label', { for: 'search-birth' }, t('search.birth')), birthInput),
    h('div', { class: 'actions' }, h('button', { type: 'submit', testid: 'search-submit', class: 'primary' }, t('search.submit'))),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.search = { ags, name: nameInput.value.trim(), birth: birthInput.value };
    go(`#/clerk/${enc(ags)}/search`);
  });

  const nodes = [viewHeading(t('search.title')), tenantLine(ags), clerkNav(ags, 'search'), form];
  if (!searched) {
    nodes.push(h('p', { class: 'hint' }, t('search.hint')));
    return { title: t('search.title'), nodes };
  }
  const params = [];
  if (name.trim()) params.push(`name=${enc(name.trim())}`);
  if (birth) params.push(`birth_date=${enc(birth)}`);
  const url = `${tenantPath(ags)}/citizens${params.length ? `?${params.join('&')}` : ''}`;
  const results = await api(url);
  const list = Array.isArray(results) ? results : [];
  const count = tn('search.count', list.length);
  nodes.push(heading(3, t('search.results'), { id: 'results-heading' }));
  nodes.push(h('p', { class: 'count' }, count));
  if (list.length) {
    nodes.push(
      table({
        caption: t('search.results'),
        columns: [t('citizen.name'), t('citizen.birth'), t('citizen.documents')],
        rows: list.map((c) => [
          h('a', { href: `#/clerk/${enc(ags)}/citizens/${enc(c.citizen_id)}`, testid: 'citizen-link' }, c.display_name || c.citizen_id),
          dateEl(c.birth_date),
          fmtNumber(c.documents),
        ]),
      }),
    );
  }
  announce(count);
  return { title: t('search.title'), nodes, focus: '#results-heading' };
}

/** Every document of every file and case, oldest first; documents without a date last. */
function timelineEntries(citizen) {
  const out = [];
  for (const file of citizen.files || []) {
    for (const kase of file.cases || []) {
      for (const doc of kase.documents || []) out.push({ doc, file, kase, order: out.length });
    }
  }
  out.sort((a, b) => {
    const x = a.doc.event_date;
    const y = b.doc.event_date;
    if (x && y && x !== y) return x < y ? -1 : 1;
    if (!x !== !y) return x ? -1 : 1;
    return a.order - b.order;
  });
  return out;
}

async function viewCitizen(ags, id) {
  const c = await api(`${tenantPath(ags)}/citizens/${enc(id)}`);
  const title = c.display_name || c.citizen_id;
  const nodes = [viewHeading(title), tenantLine(ags), clerkNav(ags, null)];

  nodes.push(heading(3, t('citizen.data')));
  nodes.push(
    dl([
      [t('citizen.family'), c.family_name || '–'],
      [t('citizen.given'), c.given_names || '–'],
      [t('citizen.birth'), dateEl(c.birth_date)],
      [t('citizen.identifiers'), (c.identifiers || []).length ? c.identifiers.map((k) => tr('idkind', k)).join(', ') : '–'],
      [t('citizen.id'), code(c.citizen_id)],
      [t('citizen.files'), (c.files || []).map((f) => `${f.file_plan_code} ${f.subject}`.trim()).join('; ') || '–'],
    ]),
  );

  const withheld = Number(c.withheld_documents) || 0;
  if (withheld > 0) {
    nodes.push(h('p', { class: 'note', testid: 'withheld-note' }, tn('citizen.withheld', withheld)));
  }

  const entries = timelineEntries(c);
  nodes.push(heading(3, t('citizen.timeline'), { id: 'timeline-heading' }));
  if (!entries.length) {
    nodes.push(h('p', { class: 'hint' }, t('citizen.noDocuments')));
  }
  const list = h('ol', { class: 'timeline', testid: 'timeline', 'aria-labelledby': 'timeline-heading' });
  for (const { doc, file, kase } of entries) {
    list.append(
      h(
        'li',
        { class: 'timeline-item', testid: 'timeline-item', dataset: { document: doc.document_id } },
        h('p', { class: 'tl-date' }, dateEl(doc.event_date)),
        h(
          'div',
          { class: 'tl-body' },
          h(
            'h4',
            { class: 'tl-title' },
            h('a', { href: `#/clerk/${enc(ags)}/documents/${enc(doc.document_id)}`, testid: 'document-link' }, doc.title || doc.document_id),
            ' ',
            confidentialityBadge(doc.confidentiality),
          ),
          h('p', { class: 'tl-type' }, h('strong', {}, docType(doc.document_type))),
          dl(
            [
              [t('doc.caseType'), kase.case_type || '–'],
              [t('doc.filePlan'), file.file_plan_code ? `${file.file_plan_code}${file.subject ? ` – ${file.subject}` : ''}` : '–'],
              [t('doc.retention'), doc.retention_deadline ? dateEl(doc.retention_deadline) : t('doc.retentionOpen')],
              doc.confidentiality && doc.confidentiality !== 'normal' ? [t('doc.confidentiality'), tr('conf', doc.confidentiality)] : null,
            ],
            'fields compact',
          ),
          doc.content_deleted ? h('p', { class: 'note small' }, t('doc.contentDeleted')) : null,
        ),
      ),
    );
  }
  nodes.push(list);
  return { title, nodes };
}

async function viewDocument(ags, id) {
  const base = `${tenantPath(ags)}/documents/${enc(id)}`;
  const d = await api(base);
  const doc = d.document || {};
  const title = doc.title || doc.document_id || id;
  const nodes = [
    viewHeading(title, { testid: 'document-title' }),
    tenantLine(ags),
    clerkNav(ags, null),
    h(
      'p',
      { class: 'back' },
      h('a', { href: `#/clerk/${enc(ags)}/citizens/${enc(d.citizen_id)}` }, t('doc.backTo', { name: d.display_name || d.citizen_id })),
    ),
  ];
  const badge = confidentialityBadge(doc.confidentiality);
  if (badge) nodes.push(h('p', {}, badge));
  if (doc.content_deleted) nodes.push(h('p', { class: 'note' }, t('doc.contentDeleted')));

  nodes.push(heading(3, t('doc.details')));
  const msg = d.message || {};
  nodes.push(
    dl([
      [t('doc.type'), docType(doc.document_type)],
      [t('doc.title'), doc.title || '–'],
      [t('doc.eventDate'), dateEl(doc.event_date)],
      [t('doc.citizen'), h('a', { href: `#/clerk/${enc(ags)}/citizens/${enc(d.citizen_id)}` }, d.display_name || d.citizen_id)],
      [t('doc.caseType'), d.case_type || '–'],
      [t('doc.caseId'), code(d.case_id)],
      [t('doc.filePlan'), d.file_plan_code || '–'],
      [t('doc.fileSubject'), d.file_subject || '–'],
      [t('doc.fileId'), code(d.file_id)],
      [t('doc.retention'), doc.retention_deadline ? dateEl(doc.retention_deadline) : t('doc.retentionOpen')],
      [t('doc.retentionRule'), doc.retention_rule || '–'],
      [t('doc.confidentiality'), tr('conf', doc.confidentiality)],
      [t('doc.version'), fmtNumber(doc.version)],
      [t('doc.id'), code(doc.document_id)],
      [t('doc.messageUuid'), code(msg.uuid || doc.message_uuid)],
      [t('doc.messageType'), msg.message_type || '–'],
      [t('doc.receivedAt'), timeEl(msg.received_at)],
      [t('doc.contentDeletedLabel'), doc.content_deleted ? t('yes') : t('no')],
    ]),
  );

  nodes.push(heading(3, t('doc.metadata')));
  const meta = Array.isArray(doc.metadata) ? doc.metadata : [];
  nodes.push(meta.length ? dl(meta.map(([k, v]) => [String(k), String(v ?? '')]), 'fields metadata') : h('p', { class: 'hint' }, t('doc.noMetadata')));

  nodes.push(heading(3, t('doc.versions')));
  const versions = Array.isArray(d.versions) ? d.versions : [];
  nodes.push(
    table({
      caption: t('doc.versions'),
      columns: [t('doc.version'), t('doc.digest'), t('doc.journalIndex')],
      rows: versions.map((v) => [fmtNumber(v.version), code(v.digest), fmtNumber(v.journal_index)]),
    }),
  );

  if (Array.isArray(doc.deliveries) && doc.deliveries.length) {
    nodes.push(heading(3, t('doc.deliveries')));
    nodes.push(
      table({
        caption: t('doc.deliveries'),
        columns: [t('dl.sink'), t('dl.state'), t('dl.attempts'), t('dl.lastError')],
        rows: doc.deliveries.map((x) => [
          x.sink || '–',
          tr('dstate', x.state),
          fmtNumber(x.attempts),
          Array.isArray(x.errors) && x.errors.length ? x.errors[x.errors.length - 1].error : '–',
        ]),
      }),
    );
  }

  // Attachments: fetched with the token, saved through a Blob URL.
  nodes.push(heading(3, t('doc.attachments')));
  const attachments = Array.isArray(doc.attachments) ? doc.attachments : [];
  if (!attachments.length) nodes.push(h('p', { class: 'hint' }, t('doc.noAttachments')));
  else {
    nodes.push(
      h(
        'ul',
        { class: 'attachments' },
        attachments.map((name, n) =>
          h(
            'li',
            {},
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                testid: 'attachment-download',
                id: `attachment-${n}`,
                dataset: { index: String(n) },
                onclick: (ev) => downloadAttachment(ev.currentTarget, `${base}/attachments/${n}`, String(name)),
              },
              t('doc.download'),
              ' ',
              h('span', { class: 'file-name' }, String(name)),
            ),
          ),
        ),
      ),
    );
  }

  // Original XML.
  const pre = h('pre', { class: 'xml', testid: 'original-xml', id: 'original-xml', hidden: true, tabindex: '0', 'aria-label': t('doc.originalLabel') });
  const showOriginal = h(
    'button',
    { type: 'button', class: 'secondary', testid: 'show-original', 'aria-controls': 'original-xml' },
    t('doc.showOriginal'),
  );
  showOriginal.addEventListener('click', async () => {
    showOriginal.disabled = true;
    try {
      const resp = await api(`${base}/original`, { raw: true });
      pre.textContent = await resp.text();
      pre.hidden = false;
      announce(t('doc.originalShown'));
      pre.focus();
    } catch (e) {
      if (!e.handled) showError(e);
    } finally {
      showOriginal.disabled = false;
      refocus(showOriginal);
    }
  });
  nodes.push(heading(3, t('doc.original')), h('div', { class: 'actions' }, showOriginal), pre);

  // Journal proof, verified here.
  const proofOut = h('div', { class: 'proof', id: 'proof-output' });
  const checkProof = h('button', { type: 'button', class: 'primary', testid: 'check-proof', 'aria-controls': 'proof-output' }, t('proof.check'));
  checkProof.addEventListener('click', async () => {
    checkProof.disabled = true;
    try {
      // The page's latest version: the proof must be for exactly this one.
      const latest = versions.length ? versions[versions.length - 1] : {};
      await runProof(proofOut, base, { documentId: doc.document_id || id, version: latest.version, digest: latest.digest, tenant: ags });
    } catch (e) {
      // Never leave "checking …" standing: anything unexpected is a failed check.
      const result = h('p', { class: 'proof-result fail', testid: 'proof-result', id: 'proof-result', tabindex: '-1' }, `${t('proof.failed')} ${errText(e)}`);
      proofOut.replaceChildren(result);
      showError(e);
      result.focus();
    } finally {
      checkProof.disabled = false;
      refocus(checkProof);
    }
  });
  nodes.push(heading(3, t('proof.title')), h('p', { class: 'hint' }, t('proof.hint')), h('div', { class: 'actions' }, checkProof), proofOut);
  return { title, nodes };
}

async function downloadAttachment(button, url, name) {
  button.disabled = true;
  try {
    const resp = await api(url, { raw: true });
    // As bytes only: the media type comes from a citizen's message, and a blob: URL has this
    // page's origin, so it must never be opened as a document.
    const blob = new Blob([await resp.blob()], { type: 'application/octet-stream' });
    const href = URL.createObjectURL(blob);
    const a = h('a', { href, download: name || 'attachment', class: 'visually-hidden' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
    announce(t('doc.downloaded', { name }));
  } catch (e) {
    if (!e.handled) showError(e);
  } finally {
    button.disabled = false;
    refocus(button);
  }
}

// ---------------------------------------------------------------------------------------------
// Journal proof, checked in the browser (WebCrypto)
//
// The check is as strict as the Rust `Receipt::verify` (host/journal/src/receipt.rs) and the
// store's reading of `meta` (host/store/src/engine/verify.rs): a value the Rust side would
// refuse (wrong type, number out of range, hex or base64 it does not accept, unknown receipt
// field or format) is refused here too, never coerced. "Verified" must never be shown for a
// receipt the Rust verifier turns down.

const te = new TextEncoder();

/** The receipt format `Receipt::verify` accepts. */
const RECEIPT_FORMAT = 'efile-bridge-receipt/1';
/** Every field of a receipt (`#[serde(deny_unknown_fields)]` on the Rust side). */
const RECEIPT_FIELDS = new Set(['format', 'message_uuid', 'entry', 'leaf_hash', 'inclusion_proof', 'checkpoint', 'payload_salt']);
/** Every field of the public key file (`deny_unknown_fields` too). */
const KEY_FIELDS = new Set(['origin', 'algorithm', 'key']);
/** Entry kinds whose `meta.records` list the record versions they file. */
const RECORD_KINDS = new Set(['message-processed', 'review-decided', 'message-replayed']);
/** The steps of a proof check, in order; every one must pass. */
const PROOF_STEPS = ['receipt', 'leaf', 'inclusion', 'signature', 'meta'];

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A JSON string (a Rust `String`: valid Unicode). */
function str(v, what) {
  if (typeof v !== 'string') throw new Error(`${what} is not a string`);
  if (typeof v.isWellFormed === 'function' && !v.isWellFormed()) throw new Error(`${what} is not valid Unicode`);
  return v;
}

/** A JSON number that is a `u64`; above 2^53 − 1 it is refused (JSON numbers are not exact there). */
function u64Of(v, what) {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} is not a whole number ≥ 0`);
  return BigInt(v);
}

/** A 32-byte hash as hex (upper or lower case, as the `hex` crate reads it). */
function hash32(v, what) {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw new Error(`${what} is not a 32-byte hex hash`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(v.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function bytesToB64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Standard base64, padded and canonical (the `base64` crate's STANDARD engine), of `len` bytes. */
function b64ToBytes(s, len, what) {
  if (typeof s !== 'string' || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error(`${what} is not base64`);
  }
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (bytesToB64(out) !== s) throw new Error(`${what} is not canonical base64`);
  if (out.length !== len) throw new Error(`${what} is not ${len} bytes`);
  return out;
}

function concat(...parts) {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** 8 bytes big-endian of a `BigInt` in u64 range. */
function u64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return b;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The journal entry's leaf bytes (see `Entry::leaf_bytes` in host/journal). */
export function leafBytes(entry) {
  if (!isObject(entry)) throw new Error('no journal entry');
  const parts = [te.encode('efile-bridge entry v1\0'), u64(u64Of(entry.index, 'entry index'))];
  for (const [field, what] of [
    [entry.kind, 'entry kind'],
    [entry.tenant, 'entry tenant'],
    [entry.at, 'entry time'],
  ]) {
    const b = te.encode(str(field, what));
    parts.push(u64(BigInt(b.length)), b);
  }
  const digest = hash32(entry.payload_digest, 'payload_digest');
  const meta = te.encode(str(entry.meta, 'entry meta'));
  parts.push(digest, u64(BigInt(meta.length)), meta);
  return concat(...parts);
}

/**
 * Whether `entry` files this document version: a processing, replay or review entry of the
 * tenant whose `meta.records` lists `{document, version, digest}` (as the store's `verify`
 * reads it). A mention anywhere else in `meta` does not count.
 */
export function metaNamesVersion(entry, { documentId, version, digest, tenant }) {
  if (!RECORD_KINDS.has(entry?.kind)) return { ok: false, detail: `entry kind ${entry?.kind}` };
  if (entry.tenant !== tenant) return { ok: false, detail: `tenant ${entry.tenant}` };
  const meta = JSON.parse(str(entry.meta, 'entry meta'));
  const records = isObject(meta) && Array.isArray(meta.records) ? meta.records : [];
  const want = digest.toLowerCase();
  const found = records.some(
    (r) =>
      isObject(r) &&
      r.document === documentId &&
      r.version === version &&
      typeof r.digest === 'string' &&
      /^[0-9a-fA-F]{64}$/.test(r.digest) &&
      r.digest.toLowerCase() === want,
  );
  return { ok: found, detail: found ? '' : 'meta.records does not list this version' };
}

/**
 * What `JSON.parse` lets through but `serde` refuses in a receipt or key file: a key twice in
 * one object, or a number not written as a plain whole number ≥ 0 (`6.0`, `6e0`, `-0`; every
 * number in a proof is a `u32`/`u64`). `text` is valid JSON. Returns the problem or null.
 */
export function jsonStrictness(text) {
  const stack = []; // per open object the Set of its keys, per open array null
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1));
        const keys = stack[stack.length - 1];
        if (keys.has(key)) return `key "${key}" twice in one object`;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] instanceof Set;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i;
      while (j < text.length && /[-+.eE0-9]/.test(text[j])) j++;
      const token = text.slice(i, j);
      if (!/^(?:0|[1-9][0-9]*)$/.test(token)) return `number ${token} is not a whole number ≥ 0`;
      i = j - 1;
    }
  }
  return null;
}

/**
 * Checks a document proof against the installation's public key and what the page shows
 * (`expected`: `documentId`, `version`, `digest` of the latest version, `tenant`). `syntax`:
 * a problem `jsonStrictness` found in the texts the two came from. Returns
 * `{ok, steps: [{id, ok, detail}], treeSize, time, fingerprint, entry, unsupported}`; each
 * step is checked on its own so that every failure shows. `ok` only if every step passed.
 */
export async function verifyProof(proof, publicKey, expected, { subtle = globalThis.crypto?.subtle, syntax = null } = {}) {
  const sha = async (...parts) => new Uint8Array(await subtle.digest('SHA-256', concat(...parts)));
  const receipt = isObject(proof?.receipt) ? proof.receipt : {};
  const entry = isObject(receipt.entry) ? receipt.entry : {};
  const cp = isObject(receipt.checkpoint) ? receipt.checkpoint : {};
  const exp = isObject(expected) ? expected : {};
  const steps = [];
  let unsupported = false;
  const step = async (id, fn) => {
    try {
      const r = await fn();
      // Only an explicit `true` or `{ok: true}` passes.
      const ok = r === true || (isObject(r) && r.ok === true);
      steps.push({ id, ok, detail: isObject(r) && typeof r.detail === 'string' ? r.detail : '' });
    } catch (e) {
      steps.push({ id, ok: false, detail: e?.message || String(e) });
    }
  };

  // 0. The receipt's form: what `serde` accepts for a `Receipt`.
  await step('receipt', () => {
    if (!isObject(proof) || !isObject(proof.receipt)) throw new Error('no receipt');
    if (syntax) return { ok: false, detail: String(syntax) };
    if (receipt.format !== RECEIPT_FORMAT) return { ok: false, detail: `format ${String(receipt.format)}` };
    const unknown = Object.keys(receipt).filter((k) => !RECEIPT_FIELDS.has(k));
    if (unknown.length) return { ok: false, detail: `unknown field ${unknown.join(', ')}` };
    for (const k of ['message_uuid', 'payload_salt']) {
      if (receipt[k] !== undefined && receipt[k] !== null) str(receipt[k], k);
    }
    if (!isObject(receipt.entry)) throw new Error('no entry');
    if (!isObject(receipt.checkpoint)) throw new Error('no checkpoint');
    if (!Array.isArray(receipt.inclusion_proof)) throw new Error('inclusion_proof is not a list');
    return true;
  });

  // 1. The entry's leaf hash.
  let leaf = null;
  await step('leaf', async () => {
    leaf = await sha(new Uint8Array([0]), leafBytes(entry));
    const claimed = hash32(receipt.leaf_hash, 'leaf_hash');
    return { ok: equalBytes(leaf, claimed), detail: bytesToHex(leaf) };
  });

  // 2. Inclusion of that leaf in the checkpoint's tree (RFC 9162 §2.1.3.2, `verify_inclusion`).
  await step('inclusion', async () => {
    if (!leaf) throw new Error('no leaf hash');
    if (!Array.isArray(receipt.inclusion_proof)) throw new Error('inclusion_proof is not a list');
    const path = receipt.inclusion_proof.map((p, i) => hash32(p, `inclusion_proof[${i}]`));
    const root = hash32(cp.root_hash, 'root_hash');
    const size = u64Of(cp.tree_size, 'tree_size');
    let fn = u64Of(entry.index, 'entry index');
    if (fn >= size) throw new Error(`index ${fn} ≥ tree size ${size}`);
    let sn = size - 1n;
    let r = leaf;
    const one = new Uint8Array([1]);
    for (const node of path) {
      if (sn === 0n) return { ok: false, detail: 'proof too long' };
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha(one, node, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await sha(one, r, node);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) return { ok: false, detail: 'proof too short' };
    return { ok: equalBytes(r, root), detail: bytesToHex(r) };
  });

  // 3. The checkpoint's signature, by this installation's key (`Checkpoint::verify`).
  let fingerprint = null;
  await step('signature', async () => {
    if (!isObject(publicKey)) throw new Error('no public key');
    const keyBytes = b64ToBytes(publicKey.key, 32, 'public key');
    fingerprint = bytesToHex(await sha(keyBytes));
    const unknown = Object.keys(publicKey).filter((k) => !KEY_FIELDS.has(k));
    if (unknown.length) return { ok: false, detail: `unknown key field ${unknown.join(', ')}` };
    if (publicKey.algorithm !== 'ed25519') return { ok: false, detail: `algorithm ${String(publicKey.algorithm)}` };
    const origin = str(cp.origin, 'origin');
    const keyOrigin = str(publicKey.origin, 'key origin');
    if (origin !== keyOrigin) return { ok: false, detail: `origin ${origin} ≠ ${keyOrigin}` };
    const size = u64Of(cp.tree_size, 'tree_size');
    const root = hash32(cp.root_hash, 'root_hash');
    const time = str(cp.time, 'time');
    const sig = b64ToBytes(cp.signature, 64, 'signature');
    const body = te.encode(`${origin}\n${size}\n${bytesToB64(root)}\n${time}\n`);
    let key;
    try {
      key = await subtle.importKey('raw', keyBytes, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      if (e?.name === 'NotSupportedError') unsupported = true;
      throw e;
    }
    return { ok: (await subtle.verify({ name: 'Ed25519' }, key, sig, body)) === true, detail: '' };
  });

  // 4. The entry files the document version this page shows.
  await step('meta', () => {
    const documentId = str(exp.documentId, 'document id of the page');
    if (proof?.document_id !== documentId) return { ok: false, detail: `document ${String(proof?.document_id)}` };
    if (!Number.isSafeInteger(proof.version) || proof.version < 1) throw new Error('version is not a whole number ≥ 1');
    const digest = bytesToHex(hash32(proof.digest, 'digest'));
    if (proof.version !== exp.version) return { ok: false, detail: `version ${proof.version} ≠ ${String(exp.version)}` };
    if (typeof exp.digest !== 'string' || digest !== exp.digest.toLowerCase()) {
      return { ok: false, detail: `digest ${digest} ≠ ${String(exp.digest)}` };
    }
    return metaNamesVersion(entry, { documentId, version: proof.version, digest, tenant: str(exp.tenant, 'tenant of the page') });
  });

  return {
    ok: steps.length === PROOF_STEPS.length && steps.every((s, i) => s.id === PROOF_STEPS[i] && s.ok === true),
    unsupported,
    steps,
    treeSize: cp.tree_size,
    time: cp.time,
    origin: cp.origin,
    fingerprint,
    entry,
  };
}

/** Fetches the proof of the document at `base` and checks it; `expected`: see `verifyProof`. */
/**
 * Compares the proof's key with the one pinned for this site, and pins it at the first
 * successful check. Adds a `pin` step; a different key fails the proof.
 */
function checkPin(v) {
  let pinned = null;
  try {
    pinned = JSON.parse(store.get('localStorage', KEY_PIN) || 'null');
  } catch {
    pinned = null;
  }
  const short = (f) => `${String(f).slice(0, 16)}…`;
  if (pinned && typeof pinned.fingerprint === 'string') {
    const date = fmtDate(String(pinned.at).slice(0, 10));
    if (pinned.fingerprint === v.fingerprint) {
      v.steps.push({ id: 'pin', ok: true, detail: t('proof.pin.same', { date }) });
    } else {
      const detail = t('proof.pin.changed', { date, pinned: short(pinned.fingerprint), now: short(v.fingerprint) });
      v.steps.push({ id: 'pin', ok: false, detail });
      v.ok = false;
    }
    return;
  }
  if (v.ok) {
    store.set('localStorage', KEY_PIN, JSON.stringify({ fingerprint: v.fingerprint, at: new Date().toISOString() }));
    v.steps.push({ id: 'pin', ok: true, detail: t('proof.pin.first') });
  }
}

async function runProof(out, base, expected) {
  const result = h('p', { class: 'proof-result', testid: 'proof-result', id: 'proof-result', tabindex: '-1' });
  if (!globalThis.crypto?.subtle) {
    result.classList.add('fail');
    result.textContent = t('proof.needsHttps');
    out.replaceChildren(result);
    showError(t('proof.needsHttps'));
    result.focus();
    return;
  }
  result.textContent = t('proof.running');
  out.replaceChildren(result);
  let proof;
  let key;
  let syntax;
  try {
    // As text: `jsonStrictness` reads what `JSON.parse` would hide.
    const texts = await Promise.all(
      [api(`${base}/proof`, { raw: true }), api('/v1/public-key', { raw: true })].map((p) => p.then((r) => r.text())),
    );
    [proof, key] = texts.map((text) => JSON.parse(text));
    syntax = texts.map(jsonStrictness).find((x) => x) || null;
  } catch (e) {
    if (e.handled) return;
    result.classList.add('fail');
    result.textContent = t('proof.loadFailed');
    showError(e);
    result.focus();
    return;
  }
  let v;
  try {
    v = await verifyProof(proof, key, expected, { syntax });
  } catch (e) {
    result.classList.add('fail');
    result.textContent = `${t('proof.failed')} ${e.message}`;
    result.focus();
    return;
  }
  if (v.fingerprint) checkPin(v);
  const stepList = h(
    'ol',
    { class: 'steps' },
    v.steps.map((s) =>
      h(
        'li',
        { class: s.ok ? 'pass' : 'fail', dataset: { step: s.id } },
        h('span', { class: 'mark', 'aria-hidden': 'true' }, s.ok ? '✓' : '✗'),
        ' ',
        h('strong', {}, s.ok ? t('proof.pass') : t('proof.fail')),
        ': ',
        t(`proof.step.${s.id}`),
        (!s.ok || s.id === 'pin') && s.detail ? h('span', { class: 'detail' }, ` (${s.detail})`) : null,
      ),
    ),
  );
  const e = v.entry || {};
  const facts = dl([
    [t('proof.entry'), `#${fmtNumber(e.index)} · ${e.kind ?? '–'}`],
    [t('proof.entryTime'), timeEl(e.at)],
    [t('proof.version'), fmtNumber(proof?.version)],
    [t('proof.digest'), code(proof?.digest)],
    [t('proof.treeSize'), fmtNumber(v.treeSize)],
    [t('proof.time'), timeEl(v.time)],
    [t('proof.origin'), code(v.origin)],
    [t('proof.fingerprint'), code(v.fingerprint ?? '–')],
  ]);
  if (v.ok) {
    result.classList.add('ok');
    result.textContent = t('proof.ok', { size: fmtNumber(v.treeSize) });
    announce(result.textContent);
  } else {
    result.classList.add('fail');
    const failed = v.steps.filter((s) => !s.ok).map((s) => t(`proof.step.${s.id}`));
    result.textContent = v.unsupported ? t('proof.unsupported') : `${t('proof.failed')} ${failed.join('; ')}`;
    showError(result.textContent);
  }
  out.replaceChildren(result, stepList, facts);
  result.focus();
}

// ---------------------------------------------------------------------------------------------
// Review items (Klärfälle)

async function viewReviews(ags) {
  const items = await api(`${tenantPath(ags)}/reviews`);
  const list = Array.isArray(items) ? items : [];
  const nodes = [viewHeading(t('reviews.title')), tenantLine(ags), clerkNav(ags, 'reviews')];
  nodes.push(h('p', { class: 'hint' }, t('reviews.hint')));
  nodes.push(h('p', { class: 'count' }, tn('reviews.count', list.length)));
  if (list.length) {
    nodes.push(
      h(
        'ul',
        { class: 'review-list' },
        list.map((r) =>
          h(
            'li',
            {},
            h(
              'a',
              { class: 'card card-link', href: `#/clerk/${enc(ags)}/reviews/${enc(r.review_id)}`, testid: 'review-item', dataset: { review: r.review_id } },
              h('span', { class: 'card-title' }, `${docType(r.document_type)}: ${r.title || '–'}`),
              h('span', { class: 'card-line' }, `${t('reviews.reason')}: ${r.reason || '–'}`),
              h(
                'span',
                { class: 'card-line' },
                `${t('reviews.candidates')}: ${(r.candidates || []).map((c) => `${c.display_name}${c.birth_date ? ` (${fmtDate(c.birth_date)})` : ''}`).join('; ') || '–'}`,
              ),
              h('span', { class: 'card-line muted' }, `${t('reviews.message')}: ${r.message_uuid || '–'}`),
            ),
          ),
        ),
      ),
    );
  }
  return { title: t('reviews.title'), nodes };
}

async function viewReview(ags, id) {
  const data = await api(`${tenantPath(ags)}/reviews/${enc(id)}`);
  const r = data.review || {};
  const rec = data.record || {};
  const title = `${t('review.title')}: ${docType(r.document_type ?? rec.document_type)} – ${r.title || rec.title || ''}`;
  const nodes = [
    viewHeading(title),
    tenantLine(ags),
    clerkNav(ags, null),
    h('p', { class: 'back' }, h('a', { href: `#/clerk/${enc(ags)}/reviews` }, t('review.back'))),
    h('p', { class: 'note' }, `${t('reviews.reason')}: ${r.reason || '–'}`),
  ];

  if (r.decision) {
    const d = r.decision;
    nodes.push(heading(3, t('review.decided'), { id: 'decision-heading' }));
    nodes.push(
      dl([
        [t('review.decision'), tr('decision', d.decision)],
        [t('doc.citizen'), h('a', { href: `#/clerk/${enc(ags)}/citizens/${enc(d.citizen_id)}` }, d.citizen_id)],
        [t('doc.id'), h('a', { href: `#/clerk/${enc(ags)}/documents/${enc(d.document_id)}` }, d.document_id)],
        [t('review.by'), d.by || '–'],
        [t('doc.journalIndex'), fmtNumber(d.journal_index)],
      ]),
    );
  }

  const cit = rec.citizen || {};
  nodes.push(heading(3, t('review.record')));
  nodes.push(
    dl([
      [t('citizen.name'), cit.display_name || '–'],
      [t('citizen.family'), cit.family_name || '–'],
      [t('citizen.given'), cit.given_names || '–'],
      [t('citizen.birth'), dateEl(cit.birth_date)],
      [t('citizen.identifiers'), (cit.identifiers || []).map((i) => tr('idkind', i?.kind ?? i)).join(', ') || '–'],
      [t('doc.type'), docType(rec.document_type ?? r.document_type)],
      [t('doc.title'), rec.title || r.title || '–'],
      [t('doc.eventDate'), dateEl(rec.event_date)],
      [t('doc.caseType'), rec.case_type || '–'],
      [t('doc.filePlan'), rec.file_plan_code ? `${rec.file_plan_code}${rec.file_subject ? ` – ${rec.file_subject}` : ''}` : '–'],
      [t('doc.retention'), rec.retention?.deadline ? dateEl(rec.retention.deadline) : t('doc.retentionOpen')],
      [t('doc.retentionRule'), rec.retention?.rule || '–'],
      [t('doc.confidentiality'), tr('conf', rec.confidentiality)],
      [t('doc.messageUuid'), code(r.message_uuid)],
      [t('doc.attachments'), (rec.attachments || []).map((a) => a?.name ?? a).join(', ') || '–'],
    ]),
  );
  const meta = Array.isArray(rec.metadata) ? rec.metadata : [];
  if (meta.length) {
    nodes.push(heading(4, t('doc.metadata')));
    nodes.push(dl(meta.map(([k, v]) => [String(k), String(v ?? '')]), 'fields metadata'));
  }

  nodes.push(heading(3, t('review.candidates')));
  const open = !r.decision;
  const decide = async (button, body, done) => {
    for (const b of document.querySelectorAll('.decide')) b.disabled = true;
    try {
      await api(`${tenantPath(ags)}/reviews/${enc(id)}`, { method: 'POST', body });
      await reload();
      announce(done);
      ($('#decision-heading') || $('#view-heading'))?.focus();
    } catch (e) {
      if (e.handled) return;
      showError(e);
      for (const b of document.querySelectorAll('.decide')) b.disabled = false;
      button.focus();
    }
  };
  const candidates = Array.isArray(r.candidates) ? r.candidates : [];
  nodes.push(
    table({
      caption: t('review.candidates'),
      columns: [t('citizen.name'), t('citizen.birth'), t('citizen.documents'), t('review.action')],
      rows: candidates.map((c) => [
        h('a', { href: `#/clerk/${enc(ags)}/citizens/${enc(c.citizen_id)}` }, c.display_name || c.citizen_id),
        dateEl(c.birth_date),
        fmtNumber(c.documents),
        open
          ? h(
              'button',
              {
                type: 'button',
                class: 'primary decide',
                testid: 'review-assign',
                dataset: { citizen: c.citizen_id },
                onclick: (ev) =>
                  decide(ev.currentTarget, { decision: 'assign', citizen: c.citizen_id }, t('review.assigned', { name: c.display_name || c.citizen_id })),
              },
              t('review.assign'),
              h('span', { class: 'visually-hidden' }, `: ${c.display_name || c.citizen_id}`),
            )
          : '–',
      ]),
    }),
  );
  if (open) {
    nodes.push(
      h('p', { class: 'hint' }, t('review.newHint')),
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'secondary decide',
            testid: 'review-new-citizen',
            onclick: (ev) => decide(ev.currentTarget, { decision: 'new-citizen' }, t('review.newDone')),
          },
          t('review.newCitizen'),
        ),
      ),
    );
  }
  return { title, nodes };
}

// ---------------------------------------------------------------------------------------------
// Operator view (Betrieb)

const OP_SECTIONS = ['tenants', 'adapters', 'flow', 'deadletters', 'journal'];

function operatorName() {
  return (store.get('sessionStorage', KEY_OPERATOR) || '').trim();
}

/** Adds `operator` to a request body when the operator gave a name. */
function withOperator(body = {}) {
  const name = operatorName();
  return name ? { ...body, operator: name } : body;
}

/** A section that loads its content; `reload()` loads it again. */
function opSection(id, titleKey, loader, testid) {
  const body = h('div', { class: 'section-body' });
  const sec = h(
    'section',
    { class: 'op-section', id: `op-${id}`, 'aria-labelledby': `op-${id}-heading`, testid, 'aria-busy': 'true' },
    heading(3, t(titleKey), { id: `op-${id}-heading` }),
    body,
  );
  sec.reload = async (restore = null) => {
    sec.setAttribute('aria-busy', 'true');
    if (!body.firstChild) body.append(h('p', { class: 'loading' }, t('loading')));
    try {
      body.replaceChildren(...[await loader(sec)].flat());
    } catch (e) {
      if (e.handled) return;
      body.replaceChildren(errorBox(e));
    } finally {
      sec.removeAttribute('aria-busy');
      markScrollables(sec);
    }
    if (restore) document.getElementById(restore)?.focus();
  };
  return sec;
}

function viewOperator(sub) {
  const nameInput = h('input', {
    id: 'operator-name',
    type: 'text',
    testid: 'operator-name',
    autocomplete: 'name',
    value: operatorName(),
    'aria-describedby': 'operator-name-hint',
  });
  nameInput.addEventListener('input', () => store.set('sessionStorage', KEY_OPERATOR, nameInput.value.trim() || null));
  const header = h(
    'div',
    { class: 'card operator-header' },
    h('div', { class: 'field' }, h('label', { for: 'operator-name' }, t('op.name')), nameInput),
    h('p', { id: 'operator-name-hint', class: 'hint' }, t('op.nameHint')),
  );
  const toc = h(
    'nav',
    { class: 'sub-nav', 'aria-label': t('op.sections') },
    h(
      'ul',
      {},
      OP_SECTIONS.map((s) =>
        h('li', {}, h('a', { href: `#/operator/${s}`, 'aria-current': sub === s ? 'location' : null }, t(`op.${s}`))),
      ),
    ),
  );

  // Tenants and adapters share one load of `/v1/admin/tenants`.
  let tenantsPromise = null;
  const tenants = (fresh) => {
    if (fresh || !tenantsPromise) tenantsPromise = api('/v1/admin/tenants');
    return tenantsPromise;
  };
  const secTenants = opSection('tenants', 'op.tenants', () => renderTenants(tenants(false)), 'op-tenants');
  const secAdapters = opSection('adapters', 'op.adapters', () => renderAdapters(tenants(false), refreshSwitch), 'op-adapters');
  const secFlow = opSection('flow', 'op.flow', renderFlow);
  const secDead = opSection('deadletters', 'op.deadletters', (sec) => renderDeadletters(sec));
  const secJournal = opSection('journal', 'op.journal', (sec) => renderJournal(sec));

  async function refreshSwitch(focusId) {
    tenants(true);
    await Promise.all([secTenants.reload(), secAdapters.reload()]);
    (document.getElementById(focusId) || $('#op-adapters-heading'))?.focus();
  }

  const sections = [secTenants, secAdapters, secFlow, secDead, secJournal];
  for (const s of sections) s.reload();
  const focus = OP_SECTIONS.includes(sub) ? `#op-${sub}-heading` : '#view-heading';
  return { title: t('op.title'), nodes: [viewHeading(t('op.title')), header, toc, ...sections], focus };
}

function counts(m) {
  return m || {};
}

async function renderTenants(promise) {
  const list = await promise;
  if (!Array.isArray(list) || !list.length) return h('p', { class: 'hint' }, t('op.noTenants'));
  return table({
    caption: t('op.tenants'),
    columns: [t('op.ags'), t('op.tenantName'), t('op.state'), t('op.activeAdapters'), t('op.tokens'), t('op.rate'), t('flow.accepted'), t('flow.processed'), t('flow.failed'), t('op.open')],
    rows: list.map((x) => [
      x.ags,
      x.name || '–',
      x.disabled ? h('span', { class: 'badge badge-secret' }, t('op.disabled')) : t('op.enabled'),
      adapterList(x.adapters),
      fmtNumber(x.tokens),
      x.rate_limit_per_sec ? `${fmtNumber(x.rate_limit_per_sec)}/s` : t('op.noLimit'),
      fmtNumber(counts(x.messages).accepted ?? 0),
      fmtNumber(counts(x.messages).processed ?? 0),
      fmtNumber(counts(x.messages).failed ?? 0),
      h('a', { href: `#/clerk/${enc(x.ags)}` }, t('op.openClerk'), h('span', { class: 'visually-hidden' }, ` ${x.ags}`)),
    ]),
  });
}

function adapterName(a) {
  if (!a) return '–';
  if (typeof a === 'string') return a;
  return a.version ? `${a.name}@${a.version}` : String(a.name ?? '–');
}

function adapterList(adapters) {
  if (!Array.isArray(adapters) || !adapters.length) return '–';
  return h(
    'ul',
    { class: 'plain' },
    adapters.map((a) => {
      const handles = Array.isArray(a?.handles) ? a.handles.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ') : '';
      return h('li', {}, h('code', {}, adapterName(a)), handles ? ` (${handles})` : '');
    }),
  );
}

/** Shows an in-page confirmation inside `container`; `onYes` runs on confirmation. */
function askConfirm(container, origin, message, yesLabel, onYes) {
  for (const old of document.querySelectorAll('.confirm')) old.remove();
  const msgId = nextId('confirm-msg');
  const panel = h('div', { class: 'confirm', role: 'group', 'aria-labelledby': msgId });
  const cancel = () => {
    panel.remove();
    origin.focus();
    announce(t('confirm.cancelled'));
  };
  const yes = h('button', { type: 'button', class: 'danger', testid: 'confirm-yes' }, yesLabel);
  const no = h('button', { type: 'button', class: 'secondary', testid: 'confirm-no', onclick: cancel }, t('confirm.no'));
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    no.disabled = true;
    try {
      await onYes();
      panel.remove();
    } catch (e) {
      if (e.handled) return;
      panel.remove();
      showError(e);
      origin.focus();
    }
  });
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') cancel();
  });
  panel.append(h('p', { id: msgId, class: 'confirm-msg', tabindex: '-1' }, message), h('div', { class: 'actions' }, yes, no));
  container.append(panel);
  $(`#${msgId}`).focus();
}

/** Runs an operator action from `button` (no confirmation: nothing it does is lost). */
async function act(button, run) {
  button.disabled = true;
  try {
    await run();
  } catch (e) {
    if (!e.handled) showError(e);
    if (button.isConnected) button.focus();
  } finally {
    button.disabled = false;
  }
}

async function renderAdapters(tenantsPromise, refresh) {
  const [tenants, reg] = await Promise.all([tenantsPromise, api('/v1/admin/adapters')]);
  const installed = (reg?.installed || []).filter((a) => a.removed_index === undefined || a.removed_index === null);
  const switches = reg?.switches || [];
  const out = [];

  out.push(heading(4, t('ad.installed')));
  out.push(
    installed.length
      ? table({
          caption: t('ad.installed'),
          columns: [t('ad.adapter'), t('ad.publisher'), t('ad.componentHash'), t('doc.journalIndex')],
          rows: installed.map((a) => [h('code', {}, `${a.name}@${a.version}`), a.publisher || '–', code(a.component_sha256), fmtNumber(a.installed_index)]),
        })
      : h('p', { class: 'hint' }, t('ad.noneInstalled')),
  );

  for (const tenant of Array.isArray(tenants) ? tenants : []) {
    const ags = tenant.ags;
    const active = Array.isArray(tenant.adapters) ? tenant.adapters : [];
    const activeNames = new Set(active.map(adapterName));
    const candidates = installed.filter((a) => !activeNames.has(`${a.name}@${a.version}`));
    const history = switches.filter((s) => s.tenant === ags).sort((a, b) => (b.journal_index ?? 0) - (a.journal_index ?? 0));
    const headingId = `ad-${ags}-heading`;
    const block = h('div', { class: 'card tenant-adapters', dataset: { tenant: ags } });
    block.append(heading(4, `${tenant.name || ags} (${ags})`, { id: headingId }));
    block.append(dl([[t('ad.active'), adapterList(active)]]));

    block.append(h('h5', {}, t('ad.candidates')));
    if (!candidates.length) block.append(h('p', { class: 'hint' }, t('ad.noCandidates')));
    else {
      block.append(
        h(
          'ul',
          { class: 'plain candidates' },
          candidates.map((a) => {
            const name = `${a.name}@${a.version}`;
            const btnId = nextId('activate');
            const btn = h(
              'button',
              { type: 'button', class: 'secondary', id: btnId, testid: 'activate', dataset: { adapter: name, tenant: ags } },
              t('ad.activate'),
              h('span', { class: 'visually-hidden' }, `: ${name}`),
            );
            btn.addEventListener('click', () =>
              askConfirm(block, btn, t('ad.confirmActivate', { adapter: name, tenant: `${tenant.name || ags} (${ags})` }), t('ad.yesActivate'), async () => {
                const res = await api(`/v1/admin/tenants/${enc(ags)}/adapters/activate`, { method: 'POST', body: withOperator({ adapter: name }) });
                await refresh(headingId);
                const idx = res?.journal_index !== undefined ? ` ${t('ad.journalRef', { index: res.journal_index })}` : '';
                announce(`${t('ad.activated', { adapter: name, tenant: ags })}${idx}`);
              }),
            );
            const shadow = h(
              'button',
              { type: 'button', class: 'secondary', id: nextId('shadow'), testid: 'shadow-start', dataset: { adapter: name, tenant: ags } },
              t('ad.shadowStart'),
              h('span', { class: 'visually-hidden' }, `: ${name}`),
            );
            shadow.addEventListener('click', () =>
              act(shadow, async () => {
                await api(`/v1/admin/tenants/${enc(ags)}/adapters/shadow/start`, { method: 'POST', body: withOperator({ adapter: name }) });
                await refresh(headingId);
                announce(t('ad.shadowStarted', { adapter: name, tenant: ags }));
              }),
            );
            return h('li', {}, h('code', {}, name), ' ', a.publisher ? h('span', { class: 'muted' }, `(${a.publisher}) `) : null, btn, ' ', shadow);
          }),
        ),
      );
    }

    const rb = h('button', { type: 'button', class: 'secondary', testid: 'rollback', dataset: { tenant: ags }, id: nextId('rollback') }, t('ad.rollback'));
    rb.addEventListener('click', () =>
      askConfirm(block, rb, t('ad.confirmRollback', { tenant: `${tenant.name || ags} (${ags})` }), t('ad.yesRollback'), async () => {
        const res = await api(`/v1/admin/tenants/${enc(ags)}/adapters/rollback`, { method: 'POST', body: withOperator({}) });
        await refresh(headingId);
        const now = res && res.name ? ` ${t('ad.nowActive', { adapter: adapterName(res) })}` : '';
        announce(`${t('ad.rolledBack', { tenant: ags })}${now}`);
      }),
    );
    const stop = h('button', { type: 'button', class: 'secondary', testid: 'shadow-stop', dataset: { tenant: ags }, id: nextId('shadow-stop') }, t('ad.shadowStop'));
    stop.addEventListener('click', () =>
      act(stop, async () => {
        await api(`/v1/admin/tenants/${enc(ags)}/adapters/shadow/stop`, { method: 'POST', body: withOperator({}) });
        await refresh(headingId);
        announce(t('ad.shadowStopped', { tenant: ags }));
      }),
    );
    block.append(h('div', { class: 'actions' }, rb, ' ', stop));

    block.append(h('h5', {}, t('ad.history')));
    block.append(
      history.length
        ? table({
            caption: `${t('ad.history')} ${ags}`,
            columns: [t('doc.journalIndex'), t('ad.action'), t('ad.scope'), t('ad.adapter'), t('ad.by')],
            rows: history.map((s) => [
              fmtNumber(s.journal_index),
              tr('switch', s.action),
              s.scope === '*' ? t('ad.scopeAll') : s.scope,
              s.name ? h('code', {}, adapterName(s)) : t('ad.configDefault'),
              s.by || '–',
            ]),
          })
        : h('p', { class: 'hint' }, t('ad.noHistory')),
    );

    // Shadow comparisons, loaded when opened.
    const shadowBody = h('div', {}, h('p', { class: 'loading' }, t('loading')));
    const details = h('details', { class: 'shadow' }, h('summary', {}, t('shadow.title')), shadowBody);
    let loaded = false;
    details.addEventListener('toggle', async () => {
      if (!details.open || loaded) return;
      loaded = true;
      try {
        const rows = await api(`/v1/admin/tenants/${enc(ags)}/adapters/shadow?limit=50`);
        shadowBody.replaceChildren(renderShadow(rows, ags));
        markScrollables(shadowBody);
      } catch (e) {
        loaded = false;
        if (!e.handled) shadowBody.replaceChildren(errorBox(e));
      }
    });
    block.append(details);
    out.push(block);
  }
  return out;
}

const SHADOW_KNOWN = new Set(['candidate', 'message_uuid', 'message_type', 'outcome', 'equal', 'changes', 'error', 'filed_by', 'at']);

function renderShadow(rows, ags) {
  const list = Array.isArray(rows) ? rows : [];
  if (!list.length) return h('p', { class: 'hint' }, t('shadow.none'));
  return table({
    caption: `${t('shadow.title')} ${ags}`,
    rowHeader: false,
    columns: [t('shadow.at'), t('shadow.candidate'), t('shadow.message'), t('shadow.outcome'), t('shadow.changes')],
    rows: list.map((x) => {
      const equal = x.outcome !== undefined ? x.outcome === 'identical' : x.equal;
      const outcome = x.outcome !== undefined ? tr('outcome', x.outcome) : equal ? t('shadow.equal') : t('shadow.differs');
      const changes = Array.isArray(x.changes) ? x.changes : [];
      const extra = Object.entries(x).filter(([k]) => !SHADOW_KNOWN.has(k));
      return [
        timeEl(x.at),
        h('code', {}, x.candidate ?? '–'),
        h('span', {}, code(x.message_uuid), x.message_type ? ` (${x.message_type})` : '', x.filed_by ? h('span', { class: 'muted block' }, `${t('shadow.filedBy')}: ${x.filed_by}`) : null),
        h('span', { class: equal ? 'badge badge-ok' : 'badge badge-high' }, outcome),
        h(
          'div',
          {},
          changes.length
            ? h(
                'ul',
                { class: 'plain changes' },
                changes.map((c) =>
                  h('li', {}, h('code', {}, c.path ?? '?'), ': ', c.filed ?? t('shadow.absent'), ' → ', c.candidate ?? t('shadow.absent')),
                ),
              )
            : null,
          x.error ? h('p', { class: 'small' }, `${t('shadow.error')}: ${x.error}`) : null,
          extra.length ? dl(extra.map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]), 'fields compact') : null,
          !changes.length && !x.error && !extra.length ? '–' : null,
        ),
      ];
    }),
  });
}

async function renderFlow() {
  const rows = await api('/v1/admin/flow');
  const list = Array.isArray(rows) ? rows : [];
  const ms = (v) => (v === null || v === undefined ? '–' : `${fmtNumber(v)} ms`);
  return table({
    caption: t('op.flow'),
    testid: 'flow-table',
    columns: [t('op.ags'), t('op.tenantName'), t('flow.accepted'), t('flow.processed'), t('flow.failed'), t('flow.received24'), t('flow.p50'), t('flow.p95'), t('flow.max'), t('flow.lastError')],
    rows: list.map((x) => [
      x.tenant,
      x.name || '–',
      fmtNumber(x.accepted ?? 0),
      fmtNumber(x.processed ?? 0),
      fmtNumber(x.failed ?? 0),
      fmtNumber(x.received_24h ?? 0),
      x.latency_ms ? ms(x.latency_ms.p50) : '–',
      x.latency_ms ? ms(x.latency_ms.p95) : '–',
      x.latency_ms ? h('span', {}, ms(x.latency_ms.max), x.latency_ms.sample !== undefined ? h('span', { class: 'muted block' }, t('flow.sample', { n: fmtNumber(x.latency_ms.sample) })) : null) : '–',
      x.last_error
        ? h('span', {}, timeEl(x.last_error.at), h('span', { class: 'block' }, x.last_error.error || ''), h('span', { class: 'block' }, code(x.last_error.uuid)))
        : '–',
    ]),
  });
}

async function renderDeadletters(sec) {
  const rows = await api('/v1/admin/deadletters');
  const list = Array.isArray(rows) ? rows : [];
  if (!list.length) return h('p', { class: 'hint' }, t('dl.none'));
  const act = async (button, url, body, done, reasonField) => {
    button.disabled = true;
    try {
      await api(url, { method: 'POST', body });
      await sec.reload();
      announce(done);
      $('#op-deadletters-heading')?.focus();
    } catch (e) {
      if (e.handled) return;
      showError(e);
      button.disabled = false;
      (reasonField || button).focus();
    }
  };
  return [
    h('p', { class: 'count' }, tn('dl.count', list.length)),
    h(
      'ul',
      { class: 'deadletters' },
      list.map((d) => {
        const id = d.delivery_id;
        const reasonId = nextId('discard-reason');
        const reason = h('input', { id: reasonId, type: 'text', testid: 'discard-reason', autocomplete: 'off' });
        const redeliver = h('button', { type: 'button', class: 'primary', testid: 'redeliver' }, t('dl.redeliver'), h('span', { class: 'visually-hidden' }, `: ${id}`));
        redeliver.addEventListener('click', () =>
          act(redeliver, `/v1/admin/deadletters/${enc(id)}/redeliver`, withOperator({}), t('dl.redelivered', { id })),
        );
        const discard = h('button', { type: 'submit', class: 'danger', testid: 'discard' }, t('dl.discard'), h('span', { class: 'visually-hidden' }, `: ${id}`));
        const form = h(
          'form',
          { class: 'discard-form', 'aria-label': `${t('dl.discard')} ${id}` },
          h('div', { class: 'field' }, h('label', { for: reasonId }, t('dl.reason')), reason),
          h('div', { class: 'actions' }, discard),
        );
        form.addEventListener('submit', (ev) => {
          ev.preventDefault();
          const why = reason.value.trim();
          if (!why) {
            reason.setAttribute('aria-invalid', 'true');
            showError(t('dl.reasonRequired'));
            reason.focus();
            return;
          }
          reason.removeAttribute('aria-invalid');
          act(discard, `/v1/admin/deadletters/${enc(id)}/discard`, withOperator({ reason: why }), t('dl.discarded', { id }), reason);
        });
        const errors = Array.isArray(d.errors) ? d.errors : [];
        return h(
          'li',
          { class: 'card deadletter', testid: 'deadletter-item', dataset: { delivery: id } },
          h('h4', {}, `${t('dl.delivery')} ${id}`),
          dl([
            [t('op.ags'), d.tenant || '–'],
            [t('dl.sink'), d.sink || '–'],
            [t('doc.id'), d.document_id ? h('a', { href: `#/clerk/${enc(d.tenant)}/documents/${enc(d.document_id)}` }, d.document_id) : '–'],
            [t('doc.version'), fmtNumber(d.version)],
            [t('dl.state'), tr('dstate', d.state)],
            [t('dl.attempts'), fmtNumber(d.attempts)],
            [t('dl.key'), code(d.idempotency_key)],
          ]),
          errors.length
            ? [
                h('h5', {}, t('dl.errors')),
                h('ol', { class: 'errors' }, errors.map((x) => h('li', {}, timeEl(x.at), ': ', x.error || ''))),
              ]
            : null,
          h('div', { class: 'actions' }, redeliver),
          form,
        );
      }),
    ),
  ];
}

function renderVerifyState(v) {
  const st = v?.state || 'never';
  const report = v?.report && typeof v.report === 'object' ? v.report : null;
  const rows = [
    [t('verify.started'), timeEl(v?.started_at)],
    [t('verify.finished'), timeEl(v?.finished_at)],
  ];
  if (report) {
    for (const [k, val] of Object.entries(report)) {
      const label = tr('report', k);
      const text = typeof val === 'number' ? (k.includes('seconds') ? `${fmtNumber(Math.round(val * 100) / 100)} s` : fmtNumber(val)) : typeof val === 'string' ? val : JSON.stringify(val);
      rows.push([label, text]);
    }
  }
  if (v?.error) rows.push([t('verify.error'), v.error]);
  return [
    h(
      'p',
      { class: 'verify-line' },
      `${t('verify.state')}: `,
      h('strong', { testid: 'verify-state', class: `state state-${st}`, dataset: { state: st } }, tr('vstate', st)),
    ),
    dl(rows),
  ];
}

async function renderJournal() {
  const stateBox = h('div', { class: 'verify-box', id: 'verify-box', tabindex: '-1' });
  const run = h('button', { type: 'button', class: 'primary', testid: 'verify-run', id: 'verify-run' }, t('verify.run'));
  const gen = state.gen;
  let timer = null;

  const paint = (v) => {
    stateBox.replaceChildren(...renderVerifyState(v));
    run.disabled = v?.state === 'running';
  };
  const poll = () => {
    if (timer !== null) return;
    timer = setInterval(async () => {
      if (gen !== state.gen) {
        clearInterval(timer);
        return;
      }
      try {
        const v = await api('/v1/admin/verify');
        paint(v);
        if (v?.state !== 'running') {
          clearInterval(timer);
          state.timers.delete(timer);
          timer = null;
          if (v?.state === 'ok') announce(t('verify.doneOk'));
          else showError(`${t('verify.doneFailed')}${v?.error ? `: ${v.error}` : ''}`);
          refocus(run, stateBox);
        }
      } catch (e) {
        clearInterval(timer);
        state.timers.delete(timer);
        timer = null;
        run.disabled = false;
        if (!e.handled) showError(e);
      }
    }, 1000);
    state.timers.add(timer);
  };

  run.addEventListener('click', async () => {
    run.disabled = true;
    try {
      await api('/v1/admin/verify', { method: 'POST', body: withOperator({}) });
      announce(t('verify.started.msg'));
    } catch (e) {
      if (e.handled) return;
      if (e.status === 409) announce(`${t('verify.alreadyRunning')}${e.reason ? `: ${e.reason}` : ''}`);
      else {
        showError(e);
        run.disabled = false;
        return;
      }
    }
    paint({ state: 'running' });
    // The button is disabled now; the state it shows keeps the focus.
    refocus(stateBox, run);
    poll();
  });

  const [v, checkpoints] = await Promise.allSettled([api('/v1/admin/verify'), api('/v1/admin/checkpoints?limit=20')]);
  const out = [h('h4', {}, t('verify.title')), stateBox, h('div', { class: 'actions' }, run)];
  if (v.status === 'fulfilled') {
    paint(v.value);
    if (v.value?.state === 'running') poll();
  } else {
    if (v.reason?.handled) return out;
    stateBox.replaceChildren(errorBox(v.reason));
  }

  out.push(h('h4', {}, t('cp.title')));
  if (checkpoints.status === 'fulfilled') {
    const list = Array.isArray(checkpoints.value) ? checkpoints.value : [];
    out.push(
      table({
        caption: t('cp.title'),
        testid: 'checkpoints-table',
        columns: [t('cp.size'), t('cp.time'), t('cp.root'), t('cp.origin')],
        rows: list.map((c) => [fmtNumber(c.tree_size), timeEl(c.time), code(c.root_hash), code(c.origin)]),
      }),
    );
    if (!list.length) out.push(h('p', { class: 'hint' }, t('cp.none')));
  } else if (!checkpoints.reason?.handled) {
    out.push(errorBox(checkpoints.reason));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Start

function init() {
  const saved = store.get('localStorage', KEY_LANG);
  const preferred = saved || (navigator.language || 'de').slice(0, 2);
  state.lang = saved && Object.hasOwn(DICT, preferred) ? preferred : 'de';
  state.token = store.get('sessionStorage', KEY_TOKEN);

  const langSelect = $('#lang-select');
  langSelect.value = state.lang;
  langSelect.addEventListener('change', () => {
    state.lang = Object.hasOwn(DICT, langSelect.value) ? langSelect.value : 'de';
    store.set('localStorage', KEY_LANG, state.lang);
    buildChrome();
    clearMessages();
    reload(langSelect.id);
  });

  $('#skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    ($('#view-heading') || $('#main')).focus();
  });

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => markScrollables(), 200);
  });

  window.addEventListener('hashchange', () => {
    if (!state.keepMessages) clearMessages();
    state.keepMessages = false;
    route({ focus: true });
  });

  buildChrome();
  route({ focus: false });
}

if (typeof document !== 'undefined' && document.getElementById('main')) init();
