//! The 49 APIs of the level-1 samples: names, descriptions and parameters
//! as `ToolManager.get_api_description` reports them (generated from the
//! official `apis/*.py` class attributes; the text is data the prompt must
//! reproduce verbatim), plus which parameters the Python `call` requires.

use super::{ApiInfo, Param, ParamType};

/// Every API a level-1 sample calls, in name order.
pub(crate) static APIS: [ApiInfo; 49] = [
    ApiInfo {
        name: "AddAgenda",
        description: "The API for adding a agenda item includes content, time and location.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the agenda.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for agenda. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location of the agenda.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "AddAlarm",
        description: "The API for setting an alarm includes a parameter for the alarm time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for alarm. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "AddMeeting",
        description: "This API allows users to make a reservation for a meeting and store the meeting information (e.g., topic, time, location, attendees) in the database.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "meeting_topic", ty: ParamType::Str, description: "The title of the meeting, no more than 50 characters.", required: true },
            Param { name: "start_time", ty: ParamType::Str, description: "The start time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "end_time", ty: ParamType::Str, description: "The end time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location where the meeting to be held, no more than 100 characters.", required: true },
            Param { name: "attendees", ty: ParamType::ListStr, description: "The attendees of the meeting, including names, positions and other information.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "AddReminder",
        description: "The API for adding a reminder item includes content and time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the conference.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for conference. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "AppointmentRegistration",
        description: "This API registers an appointment of hospital.",
        inputs: &[
            Param { name: "patient_name", ty: ParamType::Str, description: "The name of patient.", required: true },
            Param { name: "date", ty: ParamType::Str, description: "The date of appointment. Format be like %Y-%m-%d", required: true },
            Param { name: "doctor_name", ty: ParamType::Str, description: "The name of appointed doctor.", required: true },
        ],
        outputs: &[
            ("appointment_id", "str", "The ID of appointment."),
        ],
    },
    ApiInfo {
        name: "BookHotel",
        description: "This API orders a hotel room. Two rooms are ordered if the number of adults is greater than 2. Only one order can be made at same time.",
        inputs: &[
            Param { name: "hotel_name", ty: ParamType::Str, description: "The name of the hotel.", required: true },
            Param { name: "check_in_time", ty: ParamType::Str, description: "The time to check in. Format: %Y-%m-%d", required: true },
            Param { name: "check_out_time", ty: ParamType::Str, description: "The time to check out. Format: %Y-%m-%d", required: true },
            Param { name: "room_count", ty: ParamType::Int, description: "The number of rooms to order.", required: true },
            Param { name: "adult_count", ty: ParamType::Int, description: "The number of adults.", required: true },
            Param { name: "child_count", ty: ParamType::Int, description: "The number of children.", required: true },
        ],
        outputs: &[
            ("order_id", "str", "The ID of the order."),
        ],
    },
    ApiInfo {
        name: "Calculator",
        description: "This API provides basic arithmetic operations: addition, subtraction, multiplication, and division.",
        inputs: &[
            Param { name: "formula", ty: ParamType::Str, description: "The formula that needs to be calculated. Only integers are supported. Valid operators are +, -, *, /, and (, ). For example, '(1 + 2) * 3'.", required: true },
        ],
        outputs: &[
            ("result", "float", "The result of the formula."),
        ],
    },
    ApiInfo {
        name: "CancelRegistration",
        description: "This API cancels the registration of a patient given appointment ID.",
        inputs: &[
            Param { name: "appointment_id", ty: ParamType::Str, description: "The ID of appointment.", required: true },
        ],
        outputs: &[
            ("status", "str", "The status of cancellation."),
        ],
    },
    ApiInfo {
        name: "CancelTimedSwitch",
        description: "Cancels a timed switch for a smart device.",
        inputs: &[
            Param { name: "name", ty: ParamType::Str, description: "The name of the smart device.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time to switch the device on or off. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "Whether the time switch is successful."),
        ],
    },
    ApiInfo {
        name: "DeleteAccount",
        description: "Delete an account.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "The token of the user.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "DeleteAgenda",
        description: "The API for deleting a schedule item includes parameters for token, content, time, and location.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the agenda.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for agenda. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location of the agenda.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "DeleteAlarm",
        description: "The API for removing an alarm includes a parameter for the time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for alarm. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "DeleteMeeting",
        description: "This API allows users to delete a reservation for a meeting and remove the meeting information in the database.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "meeting_topic", ty: ParamType::Str, description: "The title of the meeting, no more than 50 characters.", required: true },
            Param { name: "start_time", ty: ParamType::Str, description: "The start time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "end_time", ty: ParamType::Str, description: "The end time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location where the meeting to be held, no more than 100 characters.", required: true },
            Param { name: "attendees", ty: ParamType::ListStr, description: "The attendees of the meeting, including names, positions and other information.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "DeleteReminder",
        description: "The API for deleting a reminder item includes content and time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the conference.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for conference. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "DeleteScene",
        description: "This API deletes a scene by its name.",
        inputs: &[
            Param { name: "name", ty: ParamType::Str, description: "The name of the scene.", required: true },
        ],
        outputs: &[
            ("status", "str", "Whether the deletion is successful."),
        ],
    },
    ApiInfo {
        name: "Dictionary",
        description: "This API searches the dictionary for a given keyword.",
        inputs: &[
            Param { name: "keyword", ty: ParamType::Str, description: "The keyword to search.", required: true },
        ],
        outputs: &[
            ("results", "list", "The list of results. Format be like [{\"partOfSpeech\": \"xxx\", \"definitions\": [{\"definition\": \"xxx\", \"example\": \"xxx\", \"synonyms\": [\"xxx\", \"xxx\"]}, ...]"),
        ],
    },
    ApiInfo {
        name: "DocumentQA",
        description: "This API answers the question from a given document url.",
        inputs: &[
            Param { name: "url", ty: ParamType::Str, description: "The url to download the document. It should end with .txt.", required: true },
            Param { name: "question", ty: ParamType::Str, description: "The question to be answered.", required: true },
        ],
        outputs: &[
            ("answer", "str", "The answer to the question."),
        ],
    },
    ApiInfo {
        name: "EmergencyKnowledge",
        description: "This API searches for a given symptom for emergency knowledge.",
        inputs: &[
            Param { name: "symptom", ty: ParamType::Str, description: "The symptom to search.", required: true },
        ],
        outputs: &[
            ("results", "list", "The list of results. Format be like [{\"name\":possible disease name, \"aid\": first-aid method},...]"),
        ],
    },
    ApiInfo {
        name: "ForgotPassword",
        description: "Sends an email to the user with a link to reset the password. Need call twice, first with 'Forgot Password' status to get the verification code, then call again with 'Verification Code' status to change the password. Must pass the name of the parameters when calling the API, like ForgotPassword(status='Forgot Password', username='username').",
        inputs: &[
            Param { name: "status", ty: ParamType::Str, description: "'Forgot Password' for first call, after get the verification code, call again with 'Verification Code' to change the password.", required: true },
            Param { name: "username", ty: ParamType::Str, description: "The username of the user. Only needed for the first call.", required: false },
            Param { name: "email", ty: ParamType::Str, description: "The email of the user. Only needed for the first call.", required: false },
            Param { name: "verification_code", ty: ParamType::Int, description: "The verification code sent to the user. Only needed for the second call.", required: false },
            Param { name: "new_password", ty: ParamType::Str, description: "The new password of the user. Only needed for the second call.", required: false },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "GetToday",
        description: "This API gets the current date.",
        inputs: &[
        ],
        outputs: &[
            ("date", "str", "The current date. Format: %Y-%m-%d"),
        ],
    },
    ApiInfo {
        name: "GetUserToken",
        description: "Get the user token by username and password.",
        inputs: &[
            Param { name: "username", ty: ParamType::Str, description: "The username of the user.", required: true },
            Param { name: "password", ty: ParamType::Str, description: "The password of the user.", required: true },
        ],
        outputs: &[
            ("token", "str", "The token of the user."),
        ],
    },
    ApiInfo {
        name: "ImageCaption",
        description: "This API generates a caption for a given image.",
        inputs: &[
            Param { name: "url", ty: ParamType::Str, description: "The url to download the image. It should end with .jpg, .jpeg or .png.", required: true },
        ],
        outputs: &[
            ("caption", "str", "The generated caption."),
        ],
    },
    ApiInfo {
        name: "ModifyAgenda",
        description: "The API for modifying a schedule item includes parameters for content, time, and location.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the agenda.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The new time for agenda. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The new location of the agenda.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "ModifyAlarm",
        description: "The API for modifying an alarm includes a parameter for the from_time to to_time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "from_time", ty: ParamType::Str, description: "The time for alarm which changed from. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "to_time", ty: ParamType::Str, description: "The time for alarm which changed to. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "ModifyMeeting",
        description: "This API allows users to modify a reservation for a meeting",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "meeting_topic", ty: ParamType::Str, description: "The title of the meeting, no more than 50 characters.", required: true },
            Param { name: "start_time", ty: ParamType::Str, description: "The start time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "end_time", ty: ParamType::Str, description: "The end time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location where the meeting to be held, no more than 100 characters.", required: true },
            Param { name: "attendees", ty: ParamType::ListStr, description: "The attendees of the meeting, including names, positions and other information.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "ModifyPassword",
        description: "The API for modifying the password of the account.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "The token of the user.", required: true },
            Param { name: "old_password", ty: ParamType::Str, description: "The old password of the user.", required: true },
            Param { name: "new_password", ty: ParamType::Str, description: "The new password of the user.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "ModifyRegistration",
        description: "This API modifies the registration of a patient given appointment ID.",
        inputs: &[
            Param { name: "appointment_id", ty: ParamType::Str, description: "The ID of appointment.", required: true },
            Param { name: "new_appointment_date", ty: ParamType::Str, description: "The new appointment date. Format: %Y-%m-%d.", required: false },
            Param { name: "new_appointment_doctor", ty: ParamType::Str, description: "The new appointment doctor.", required: false },
        ],
        outputs: &[
            ("status", "str", "The status of modification."),
        ],
    },
    ApiInfo {
        name: "ModifyReminder",
        description: "The API for deleting a reminder item includes content and time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the conference.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for conference. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "OpenBankAccount",
        description: "This is an API for opening a bank account for a user, given the account, password and name.",
        inputs: &[
            Param { name: "account", ty: ParamType::Str, description: "The account for the user.", required: true },
            Param { name: "password", ty: ParamType::Str, description: "The password.", required: true },
            Param { name: "name", ty: ParamType::Str, description: "account holder name.", required: true },
        ],
        outputs: &[
            ("status", "str", "success or failed"),
        ],
    },
    ApiInfo {
        name: "PlayMusic",
        description: "This API triggers a music player to play music.",
        inputs: &[
            Param { name: "music_name", ty: ParamType::Str, description: "The name of the music to play.", required: true },
        ],
        outputs: &[
            ("status", "str", "The corresponding url scheme to trigger the music player."),
        ],
    },
    ApiInfo {
        name: "QueryAgenda",
        description: "The API for getting a schedule item includes parameters for token, content, time, and location.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the agenda.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for agenda. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location of the agenda.", required: true },
        ],
        outputs: &[
            ("info", "json", "agenda info including username and time"),
        ],
    },
    ApiInfo {
        name: "QueryAlarm",
        description: "The API for querying alarm clock, help user to check the alarm clock they have set.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for alarm. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("info", "json", "alarm info including username, time, content and location"),
        ],
    },
    ApiInfo {
        name: "QueryBalance",
        description: "This API queries the balance of a given user.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "The token of the user.", required: true },
        ],
        outputs: &[
            ("balance", "float", "The balance of the user."),
        ],
    },
    ApiInfo {
        name: "QueryHealthData",
        description: "This API queries the recorded health data in database of a given user and time span.",
        inputs: &[
            Param { name: "user_id", ty: ParamType::Str, description: "The user id of the given user. Cases are ignored.", required: true },
            Param { name: "start_time", ty: ParamType::Str, description: "The start time of the time span. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "end_time", ty: ParamType::Str, description: "The end time of the time span. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("health_data", "list", "The health data of the given user and time span."),
        ],
    },
    ApiInfo {
        name: "QueryHistoryToday",
        description: "This API queries the history of the given date.",
        inputs: &[
            Param { name: "date", ty: ParamType::Str, description: "The date of the history. Format: %m-%d", required: true },
        ],
        outputs: &[
            ("history", "list", "The history of the user today."),
        ],
    },
    ApiInfo {
        name: "QueryMeeting",
        description: "This API allows users to query the information of a meeting.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "meeting_topic", ty: ParamType::Str, description: "The title of the meeting, no more than 50 characters.", required: true },
            Param { name: "start_time", ty: ParamType::Str, description: "The start time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "end_time", ty: ParamType::Str, description: "The end time of the meeting, in the pattern of %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "location", ty: ParamType::Str, description: "The location where the meeting to be held, no more than 100 characters.", required: true },
            Param { name: "attendees", ty: ParamType::ListStr, description: "The attendees of the meeting, including names, positions and other information.", required: true },
        ],
        outputs: &[
            ("meeting_info", "json", "meeting info"),
        ],
    },
    ApiInfo {
        name: "QueryRegistration",
        description: "This API queries the registration of a patient, given patient ID.",
        inputs: &[
            Param { name: "patient_name", ty: ParamType::Str, description: "The name of patient.", required: true },
            Param { name: "date", ty: ParamType::Str, description: "The date of appointment. Format be like %Y-%m-%d", required: true },
        ],
        outputs: &[
            ("appointments", "list", "The dict where from appointment_id to a list like [\"patient_name\":xxx, \"date\":xxx, \"doctor_name\":xxx]"),
        ],
    },
    ApiInfo {
        name: "QueryReminder",
        description: "The API for querying a reminder item includes content and time.",
        inputs: &[
            Param { name: "token", ty: ParamType::Str, description: "User's token.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the reminder.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time for the reminder. Format: %Y-%m-%d %H:%M:%S", required: true },
        ],
        outputs: &[
            ("reminder_info", "json", "remind info"),
        ],
    },
    ApiInfo {
        name: "QueryScene",
        description: "This API queries a scene of smart home system, given the scene name",
        inputs: &[
            Param { name: "name", ty: ParamType::Str, description: "The name of the scene.", required: true },
        ],
        outputs: &[
            ("devices", "list", "The list of smart devices, containing the name and description."),
        ],
    },
    ApiInfo {
        name: "QueryStock",
        description: "This API queries the stock price of a given stock code and date.",
        inputs: &[
            Param { name: "stock_code", ty: ParamType::Str, description: "The stock code of the given stock.", required: true },
            Param { name: "date", ty: ParamType::Str, description: "The date of the stock price. Format: %Y-%m-%d", required: true },
        ],
        outputs: &[
            ("stock_price", "float", "The stock price of the given stock."),
        ],
    },
    ApiInfo {
        name: "RecordHealthData",
        description: "This API records the health data of a user.",
        inputs: &[
            Param { name: "user_id", ty: ParamType::Str, description: "The ID of user.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time of health data. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "health_data", ty: ParamType::List, description: "The health data, with the format like [{'name': 'blood_pressure', 'value': '120/80'}, {'name': 'heart_rate', 'value': '80'}]", required: false },
        ],
        outputs: &[
            ("status", "str", "The status of recording."),
        ],
    },
    ApiInfo {
        name: "RegisterUser",
        description: "The API for registering a account, given the username, password and email.",
        inputs: &[
            Param { name: "username", ty: ParamType::Str, description: "The username of the user.", required: true },
            Param { name: "password", ty: ParamType::Str, description: "The password of the user.", required: true },
            Param { name: "email", ty: ParamType::Str, description: "The email of the user.", required: true },
        ],
        outputs: &[
            ("token", "str", "The token of the user."),
        ],
    },
    ApiInfo {
        name: "SearchEngine",
        description: "This API searches for a given keyword for search engine.",
        inputs: &[
            Param { name: "keyword", ty: ParamType::Str, description: "The keyword to search.", required: true },
        ],
        outputs: &[
            ("results", "list", "The list of results."),
        ],
    },
    ApiInfo {
        name: "SendEmail",
        description: "This API for sending email, given the receiver, subject and content.",
        inputs: &[
            Param { name: "receiver", ty: ParamType::Str, description: "The receiver address of the email.", required: true },
            Param { name: "subject", ty: ParamType::Str, description: "The subject address of the email.", required: true },
            Param { name: "content", ty: ParamType::Str, description: "The content of the email.", required: true },
        ],
        outputs: &[
            ("status", "str", "The status of the email."),
        ],
    },
    ApiInfo {
        name: "SpeechRecognition",
        description: "This API recognizes the speech from a given audio url.",
        inputs: &[
            Param { name: "url", ty: ParamType::Str, description: "The url to download the audio. It should end with .wav.", required: true },
        ],
        outputs: &[
            ("transcript", "str", "The transcript of the audio."),
        ],
    },
    ApiInfo {
        name: "SymptomSearch",
        description: "This API searches for a given symptom.",
        inputs: &[
            Param { name: "symptom", ty: ParamType::Str, description: "The symptom to search.", required: true },
        ],
        outputs: &[
            ("results", "list", "The list of results. Format be like [{\"name\":possible disease name, \"description\": disease details},...]"),
        ],
    },
    ApiInfo {
        name: "TimedSwitch",
        description: "This API for setting a timed switch for a smart device.",
        inputs: &[
            Param { name: "name", ty: ParamType::Str, description: "The name of the smart device.", required: true },
            Param { name: "time", ty: ParamType::Str, description: "The time to switch the device on or off. Format: %Y-%m-%d %H:%M:%S", required: true },
            Param { name: "on", ty: ParamType::Bool, description: "Whether to switch the device on or off.", required: true },
        ],
        outputs: &[
            ("status", "str", "Whether the time switch is successful."),
        ],
    },
    ApiInfo {
        name: "Translate",
        description: "Translate the text to the target language.",
        inputs: &[
            Param { name: "src", ty: ParamType::Str, description: "The text to be translated.", required: true },
            Param { name: "src_lang", ty: ParamType::Str, description: "[Optional] The source language to translate from. Default is auto.", required: false },
            Param { name: "tgt_lang", ty: ParamType::Str, description: "[Optional] The target language to translate to. Default is english/en.", required: false },
        ],
        outputs: &[
            ("translated_text", "str", "The translated text."),
        ],
    },
    ApiInfo {
        name: "Wiki",
        description: "This API for searching a keyword in Wikipedia.",
        inputs: &[
            Param { name: "keyword", ty: ParamType::Str, description: "The keyword to search.", required: true },
        ],
        outputs: &[
            ("results", "dict", "The list of results. Format be like {\"url\": \"xxx\", \"summary\": \"xxx\", \"content\": \"xxx\"}"),
        ],
    },
];
