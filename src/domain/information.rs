//! The public central information point (*Centraal Informatiepunt Mensenhandel*): which
//! organisation helps with what, for whom, where, in which languages and when, read from the
//! registry's service directory, and which of them fit a person's answers to four optional
//! questions.
//!
//! Eligibility is the directory's own (`ServiceOffer::admits_*`, the same checks routing
//! makes); nothing here asks for or keeps who is asking. Pure: no I/O.

use crate::domain::case::{Age, ExploitationForm, Gender, NationalityGroup};
use crate::domain::organisation::{Organisation, OrganisationKind, PublicListing, Registry, ServiceOffer};
use crate::domain::text::text_enum;

text_enum! {
    /// What people come to the information point about: the forms of exploitation and the
    /// kinds of help the directory's services give.
    pub enum Topic {
        SexualExploitation = "sexual_exploitation",
        CriminalExploitation = "criminal_exploitation",
        LabourExploitation = "labour_exploitation",
        OnlineImages = "online_images",
        AcuteSexualViolence = "acute_sexual_violence",
        Shelter = "shelter",
        LegalHelp = "legal_help",
    }
}

text_enum! {
    /// Who an organisation's help is for, as its offers admit.
    pub enum Audience {
        Minors = "minors",
        Adults = "adults",
        Women = "women",
        Men = "men",
        /// Also people without Dutch nationality.
        ForeignNationals = "foreign_nationals",
        /// Only people without Dutch nationality.
        ForeignNationalsOnly = "foreign_nationals_only",
    }
}

/// The services whose help is a topic of its own, whatever the form of exploitation.
const SERVICE_TOPICS: [(&str, Topic); 4] = [
    ("image_removal", Topic::OnlineImages),
    ("acute_sexual_violence_care", Topic::AcuteSexualViolence),
    ("shelter_placement", Topic::Shelter),
    ("legal_support", Topic::LegalHelp),
];

const FORM_TOPICS: [(ExploitationForm, Topic); 3] = [
    (ExploitationForm::Sexual, Topic::SexualExploitation),
    (ExploitationForm::Criminal, Topic::CriminalExploitation),
    (ExploitationForm::Labour, Topic::LabourExploitation),
];

/// One organisation as the information point shows it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub organisation: &'a Organisation,
    pub listing: &'a PublicListing,
    pub offers: &'a [ServiceOffer],
    /// Reporting to the police, not help: the pages show it apart.
    pub is_police: bool,
}

impl Entry<'_> {
    /// The topics the organisation's offers cover, in [`Topic::ALL`] order.
    pub fn topics(&self) -> Vec<Topic> {
        let covers = |offer: &ServiceOffer, topic: Topic| {
            FORM_TOPICS
                .iter()
                .any(|(form, t)| *t == topic && offer.admits_form(*form))
                || SERVICE_TOPICS
                    .iter()
                    .any(|(service, t)| *t == topic && offer.service == *service)
        };
        Topic::ALL
            .into_iter()
            .filter(|topic| self.offers.iter().any(|offer| covers(offer, *topic)))
            .collect()
    }

    /// Who at least one offer admits, in [`Audience::ALL`] order: the age groups; women or
    /// men only where no offer admits both; whether people without Dutch nationality are
    /// admitted too, or only they.
    pub fn audiences(&self) -> Vec<Audience> {
        let any = |f: &dyn Fn(&ServiceOffer) -> bool| self.offers.iter().any(f);
        let mut out = Vec::new();
        if any(&|o| o.minors) {
            out.push(Audience::Minors);
        }
        if any(&|o| o.adults) {
            out.push(Audience::Adults);
        }
        if !any(&|o| o.admits_gender(Gender::Female) && o.admits_gender(Gender::Male)) {
            if any(&|o| o.admits_gender(Gender::Female)) {
                out.push(Audience::Women);
            }
            if any(&|o| o.admits_gender(Gender::Male)) {
                out.push(Audience::Men);
            }
        }
        let foreign = |o: &ServiceOffer| {
            o.admits_nationality(NationalityGroup::NonEu) || o.admits_nationality(NationalityGroup::OtherEu)
        };
        if !any(&|o| o.admits_nationality(NationalityGroup::Dutch)) {
            out.push(Audience::ForeignNationalsOnly);
        } else if any(&foreign) {
            out.push(Audience::ForeignNationals);
        }
        out
    }

    /// Every language an offer works in, in the order first named.
    pub fn languages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for language in self.offers.iter().flat_map(|o| o.languages.iter()) {
            if !out.contains(&language.as_str()) {
                out.push(language);
            }
        }
        out
    }

    /// Some offer is available around the clock.
    pub fn around_the_clock(&self) -> bool {
        self.organisation.available_24_7 || self.offers.iter().any(|o| o.available_24_7)
    }

    /// Opening hours in words, of the offers that are not 24/7, each once.
    pub fn hours(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for hours in self.offers.iter().filter_map(|o| o.hours.as_deref()) {
            if !out.contains(&hours) {
                out.push(hours);
            }
        }
        out
    }

    /// Anonymous help online: a chat that needs no name.
    pub fn anonymous_online(&self) -> bool {
        self.listing.anonymous && self.listing.chat.is_some()
    }
}

/// Every organisation on the information point, in the registry file's order.
pub fn directory(registry: &Registry) -> Vec<Entry<'_>> {
    registry
        .listings
        .iter()
        .filter_map(|listing| {
            let organisation = registry.get(&listing.slug)?;
            Some(Entry {
                organisation,
                listing,
                offers: registry.offers_of(&listing.slug),
                is_police: organisation.kind == OrganisationKind::Police,
            })
        })
        .collect()
}

/// A person's answers; every one may stay unanswered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Question {
    /// Age in years.
    pub age: Option<u8>,
    pub form: Option<ExploitationForm>,
    /// A region code of the registry.
    pub region: Option<String>,
    /// A language tag, e.g. `pl`.
    pub language: Option<String>,
}

/// One organisation that fits, with why.
#[derive(Debug, Clone)]
pub struct Fit<'a> {
    pub entry: Entry<'a>,
    /// The offers that admit the person, in the organisation's order.
    pub offers: Vec<&'a ServiceOffer>,
    /// Anonymous online help: offered first.
    pub anonymous_online: bool,
    /// A fitting offer is for the person's form of exploitation in particular.
    pub for_this_form: bool,
    /// A fitting offer works in the person's language.
    pub speaks_language: bool,
    /// The organisation serves the person's region by name (not only nationally).
    pub in_region: bool,
}

/// Whether `offer` admits a person with these answers. Unanswered questions refuse nothing.
pub fn admits(offer: &ServiceOffer, question: &Question) -> bool {
    let age_fits = match question.age {
        Some(age) => {
            let minor = age < Age::MAJORITY;
            (if minor { offer.minors } else { offer.adults }) && offer.admits_age(age)
        }
        None => true,
    };
    age_fits && question.form.is_none_or(|form| offer.admits_form(form))
}

/// The organisations that fit the answers, best first: anonymous online help, then an offer
/// for this form of exploitation in particular, then one in the person's language, then one
/// in the person's region by name, then the registry file's order. The police are not among
/// them (reporting is not help, and help never depends on it); the pages show them apart.
pub fn fitting<'a>(registry: &'a Registry, question: &Question) -> Vec<Fit<'a>> {
    let mut fits: Vec<(usize, Fit<'a>)> = directory(registry)
        .into_iter()
        .enumerate()
        .filter(|(_, entry)| !entry.is_police)
        .filter(|(_, entry)| {
            question
                .region
                .as_deref()
                .is_none_or(|region| entry.organisation.serves_region(region))
        })
        .filter_map(|(index, entry)| {
            let offers: Vec<&ServiceOffer> = entry.offers.iter().filter(|o| admits(o, question)).collect();
            if offers.is_empty() {
                return None;
            }
            let anonymous_online = entry.anonymous_online() && offers.iter().any(|o| o.service == "online_chat");
            let for_this_form = question
                .form
                .is_some_and(|form| offers.iter().any(|o| o.exploitation_forms.contains(&form)));
            let speaks_language = question
                .language
                .as_deref()
                .is_some_and(|language| offers.iter().any(|o| o.languages.iter().any(|l| l == language)));
            let in_region = question.region.is_some() && !entry.organisation.is_national();
            Some((
                index,
                Fit {
                    entry,
                    offers,
                    anonymous_online,
                    for_this_form,
                    speaks_language,
                    in_region,
                },
            ))
        })
        .collect();
    fits.sort_by_key(|(index, fit)| {
        (
            !fit.anonymous_online,
            !fit.for_this_form,
            !fit.speaks_language,
            !fit.in_region,
            *index,
        )
    });
    fits.into_iter().map(|(_, fit)| fit).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/organisations.toml");

    fn names(fits: &[Fit]) -> Vec<String> {
        fits.iter().map(|f| f.entry.organisation.slug.clone()).collect()
    }

    #[test]
    fn a_sixteen_year_old_forced_to_sell_drugs_near_rotterdam_who_speaks_polish() {
        let registry = Registry::parse(SHIPPED).unwrap();
        let question = Question {
            age: Some(16),
            form: Some(ExploitationForm::Criminal),
            region: Some("rotterdam".into()),
            language: Some("pl".into()),
        };
        let fits = fitting(&registry, &question);
        let order = names(&fits);
        assert_eq!(order[0], "fier", "anonymous online help first: {order:?}");
        assert!(fits[0].anonymous_online);
        assert_eq!(
            order[1], "zorgcoordinatie-rotterdam",
            "then the region's care coordinator: {order:?}"
        );
        for not_here in ["zorgcoordinatie-amsterdam", "csg", "offlimits", "police"] {
            assert!(
                !order.contains(&not_here.to_string()),
                "{not_here} does not fit: {order:?}"
            );
        }
        // Fier's offers for 12 to 27 year olds fit; the shelter of CoMensha (adults only) does not.
        let fier: Vec<&str> = fits[0].offers.iter().map(|o| o.service.as_str()).collect();
        assert!(fier.contains(&"psychosocial_support"), "{fier:?}");
        let comensha = fits.iter().find(|f| f.entry.organisation.slug == "comensha").unwrap();
        assert!(comensha.offers.iter().all(|o| o.service != "shelter_placement"));
    }

    #[test]
    fn unanswered_questions_refuse_nothing_and_the_police_stand_apart() {
        let registry = Registry::parse(SHIPPED).unwrap();
        let everyone = fitting(&registry, &Question::default());
        let listed = directory(&registry);
        assert_eq!(everyone.len(), listed.iter().filter(|e| !e.is_police).count());
        assert!(
            listed.iter().any(|e| e.is_police),
            "the police are on the information point"
        );
        assert_eq!(names(&everyone)[0], "fier");
    }

    #[test]
    fn the_order_is_online_then_form_then_language_then_region() {
        let registry = Registry::parse(SHIPPED).unwrap();
        let adult_sexual = Question {
            age: Some(30),
            form: Some(ExploitationForm::Sexual),
            region: Some("amsterdam".into()),
            language: None,
        };
        let order = names(&fitting(&registry, &adult_sexual));
        let at = |slug: &str| order.iter().position(|s| s == slug).unwrap();
        // Fier's online chat is for everyone; CSG and Offlimits are for sexual violence.
        assert!(
            at("fier") < at("csg") && at("csg") < at("zorgcoordinatie-amsterdam"),
            "{order:?}"
        );
        assert!(at("offlimits") < at("zorgcoordinatie-amsterdam"), "{order:?}");
        assert!(at("zorgcoordinatie-amsterdam") < at("slachtofferhulp"), "{order:?}");
        assert!(
            !order.contains(&"nidos".to_string()),
            "guardianship is for minors: {order:?}"
        );
    }

    #[test]
    fn an_offer_admits_by_age_group_age_range_and_form() {
        let registry = Registry::parse(SHIPPED).unwrap();
        let shelter = registry.offer("fier", "shelter_placement").unwrap();
        let ask = |age, form| Question {
            age,
            form,
            ..Question::default()
        };
        assert!(admits(shelter, &ask(Some(12), None)));
        assert!(!admits(shelter, &ask(Some(11), None)));
        assert!(!admits(shelter, &ask(Some(28), None)));
        assert!(admits(shelter, &ask(None, Some(ExploitationForm::Labour))));
        let acute = registry.offer("csg", "acute_sexual_violence_care").unwrap();
        assert!(!admits(acute, &ask(None, Some(ExploitationForm::Criminal))));
        let guardianship = registry.offer("nidos", "guardianship").unwrap();
        assert!(!admits(guardianship, &ask(Some(18), None)));
        assert!(admits(guardianship, &ask(Some(17), None)));
    }

    #[test]
    fn an_organisation_says_what_it_helps_with_and_for_whom() {
        let registry = Registry::parse(SHIPPED).unwrap();
        let entries = directory(&registry);
        let of = |slug: &str| entries.iter().find(|e| e.organisation.slug == slug).unwrap().clone();
        assert_eq!(
            of("offlimits").topics(),
            [Topic::SexualExploitation, Topic::OnlineImages]
        );
        assert!(of("comensha").topics().contains(&Topic::Shelter));
        assert!(of("slachtofferhulp").topics().contains(&Topic::LegalHelp));
        assert_eq!(
            of("nidos").audiences(),
            [Audience::Minors, Audience::ForeignNationalsOnly]
        );
        assert_eq!(
            of("slachtofferhulp").audiences(),
            [Audience::Minors, Audience::Adults, Audience::ForeignNationals],
            "no gender named where every gender is admitted"
        );
        assert!(of("csg").around_the_clock());
        assert!(!of("offlimits").around_the_clock());
        assert_eq!(of("fier").languages(), ["nl", "en"]);
    }
}
